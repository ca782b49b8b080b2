"""`python -m bench` (`make bench`): run every benchmark, print one table, write RESULTS.md.

Sections run in order; each module's `rows(quick)` returns its rows. `bench.quant` and
`bench.tui_latency` are included when present. A section that raises becomes a failed row
instead of stopping the run. Exit status 1 when a correctness check failed (e.g. masks that
differ), 0 otherwise; a missed speed goal is reported, not an error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from typing import Any

from bench.common import load_average, machine, plain_table, row, write_results

SECTIONS = {
    "prune": "bench.prune",
    "methods": "bench.prune_methods",
    "train": "bench.train",
    "dst": "bench.dst",
    "startup": "bench.startup",
    "quant": "bench.quant",
    "onnx": "bench.onnx",
    "tui": "bench.tui_latency",
    "gpu": "bench.gpu",
    "channels": "bench.channels",
    "slurm": "bench.slurm",
}
OWN = ("methods", "slurm")
"""Sections written to RESULTS.md under their own heading, apart from the main table."""
OPTIONAL = {"quant", "tui"}  # written alongside; skipped with a note when absent


def run_section(name: str, quick: bool) -> list[dict[str, Any]]:
    """The rows of one section; a failure becomes one failed row carrying the error."""
    module = SECTIONS[name]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if name in OPTIONAL and exc.name == module:
            print(f"[{name}] skipped: {module} is not present", file=sys.stderr)
            return []
        raise
    t0 = time.perf_counter()
    print(f"[{name}] running {module} ...", file=sys.stderr, flush=True)
    try:
        rows = mod.rows(quick=quick)
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc()
        rows = [row(f"{name}: benchmark failed", module, None, None, None, "runs", False,
                    f"{type(exc).__name__}: {exc}", check_failed=True)]  # fmt: skip
    print(f"[{name}] done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return rows


def print_table(rows: list[dict[str, Any]], facts: dict[str, str]) -> None:
    """A Rich table on a terminal, plain text otherwise (pipes, logs, NO_COLOR)."""
    print("\n".join(f"{k}: {v}" for k, v in facts.items()))
    if sys.stdout.isatty() and "NO_COLOR" not in os.environ:
        try:
            from rich.console import Console
            from rich.table import Table

            from bench.common import HEADER, cells
        except ImportError:
            pass
        else:
            table = Table(*HEADER, title="ecs-tui benchmarks", show_lines=False)
            for r in rows:
                met = r.get("met")
                style = None if met is None else "green" if met else "red"
                table.add_row(*cells(r), style=style)
            console = Console()
            console.print(table)
            for i, r in enumerate(rows, 1):
                if r.get("note"):
                    console.print(f"[{i}] {r['note']}", markup=False, highlight=False)
            return
    print(plain_table(rows))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke pass: fewer, smaller runs")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch intra-op threads for every CPU row (default 1: the references are "
        "single-threaded, and on a shared machine more threads mostly wait on each other)",
    )  # fmt: skip
    parser.add_argument(
        "--write", action=argparse.BooleanOptionalAction, default=None,
        help="write bench/RESULTS.md (default: yes, except with --quick or --only)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    facts = machine()
    facts["load average (1 min) at start"] = load_average()
    t0 = time.perf_counter()
    rows = [r | {"section": name} for name in names for r in run_section(name, args.quick)]
    facts["load average (1 min) at end"] = load_average()
    facts["bench wall time"] = f"{time.perf_counter() - t0:.0f} s"
    print_table(rows, facts)
    write = args.write if args.write is not None else not args.quick and len(names) == len(SECTIONS)
    if write:
        given = argv if argv is not None else sys.argv[1:]
        command = " ".join(["python -m bench", *given])
        # bench.prune_methods and bench.slurm have sections of their own (their full runs take
        # long): running one alone (`--only methods --write`) leaves the main table as it was,
        # and the other way round.
        sections = {name: [r for r in rows if r.get("section") == name] for name in OWN}
        sections["main"] = [r for r in rows if r.get("section") not in OWN]
        sections = {name: rs for name, rs in sections.items() if rs}
        gpu_rows = [r for r in rows if r["what"].startswith("GPU epoch") and r["ours_s"]]
        if gpu_rows:
            sections["gpu"] = gpu_rows
        print(f"wrote {write_results(sections, facts, command)}", file=sys.stderr)
    return 1 if any(r.get("check_failed") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
