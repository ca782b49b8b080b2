"""Shared pieces of the benchmarks: interleaved timing, rows, machine facts, tables.

A row is a plain dict with the keys every benchmark module returns from `rows(quick)`:
`what, reference, reference_s, ours_s, ratio, goal, met, note` (and optionally
`check_failed`, True when a correctness check such as mask identity failed).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

KEYS = ("what", "reference", "reference_s", "ours_s", "ratio", "goal", "met", "note")


def row(
    what: str,
    reference: str,
    reference_s: float | None,
    ours_s: float | None,
    ratio: float | None,
    goal: str,
    met: bool | None,
    note: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """One result row (see the module docstring for the keys)."""
    out = dict(
        zip(KEYS, (what, reference, reference_s, ours_s, ratio, goal, met, note), strict=True)
    )
    out.update(extra)
    return out


def interleaved(
    fns: dict[str, Callable[[], object]], reps: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall seconds of each function, `reps` times, run in alternating order.

    Each round runs every function once, in forward order on even rounds and reversed on
    odd ones, so slow drift of the machine (other jobs, thermal state) hits all sides alike;
    the `warmup` rounds before are not recorded (first-call allocation, kernel selection).
    """
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + reps):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def load_average() -> str:
    """1-minute load average: other jobs on a shared machine slow every number down."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def machine() -> dict[str, str]:
    """The facts a reader needs to compare two results tables."""
    import numpy
    import torch
    import torchvision

    from ecs_core.latency import cpu_name  # the one reading of the CPU's name

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cpu": cpu_name(),
        "cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }


def fmt_s(seconds: float | None) -> str:
    """Seconds in a short human form: 812 ms, 3.41 s, '—' for none."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.0f}×"


def fmt_met(met: bool | None) -> str:
    return "—" if met is None else "yes" if met else "NO"


def cells(r: dict[str, Any]) -> list[str]:
    """A row as the table's text cells, in column order."""
    return [
        str(r.get("what", "")),
        str(r.get("reference", "")),
        fmt_s(r.get("reference_s")),
        fmt_s(r.get("ours_s")),
        fmt_ratio(r.get("ratio")),
        str(r.get("goal", "")),
        fmt_met(r.get("met")),
    ]


HEADER = ["what", "reference", "reference time", "ours", "ratio", "goal", "met"]


def plain_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text table, then the notes numbered under it."""
    body = [HEADER] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(HEADER))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"[{i}] {r['note']}" for i, r in enumerate(rows, 1) if r.get("note")]
    return "\n".join(lines + ([""] + notes if notes else []))


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """GitHub-flavoured table with a notes column."""
    head = HEADER + ["note"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        note = str(r.get("note", "")).replace("|", "\\|")
        out.append("| " + " | ".join(cells(r) + [note]) + " |")
    return "\n".join(out)


RESULTS = Path(__file__).with_name("RESULTS.md")
TITLES = {
    "main": "Latest `make bench`",
    "methods": "SNIP, GraSP, SynFlow vs Synaptic-Flow (`python -m bench --only methods --write`)",
    "gpu": "GPU row (`python -m bench.gpu`)",
    "slurm": "`ecs sweep --slurm` on a local single-node Slurm (`python -m bench --only slurm "
    "--write`)",
}
TEMPLATE = """# Benchmark results

Written by `make bench` (`python -m bench`) and `python -m bench.gpu`; each run replaces only
its own section between the markers, so notes outside them stay.

<!-- bench:main -->
<!-- /bench:main -->

<!-- bench:methods -->
<!-- /bench:methods -->

<!-- bench:gpu -->
No GPU run yet: run `python -m bench.gpu` on a machine with CUDA.
<!-- /bench:gpu -->
"""


def render_section(
    name: str, rows: list[dict[str, Any]], facts: dict[str, str], command: str
) -> str:
    """One section of RESULTS.md: what ran where, then the table."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"## {TITLES.get(name, name)}", "", f"`{command}`, {when}.", ""]
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    return "\n".join(lines + ["", markdown_table(rows)])


def write_results(
    sections: dict[str, list[dict[str, Any]]],
    facts: dict[str, str],
    command: str,
    path: Path = RESULTS,
) -> Path:
    """Replace the named sections of RESULTS.md (creating it if needed), keeping the rest."""
    text = path.read_text() if path.exists() else TEMPLATE
    for name, rows in sections.items():
        start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
        block = f"{start}\n{render_section(name, rows, facts, command)}\n{end}"
        if start in text and end in text:
            text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
