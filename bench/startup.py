"""`ecs --help` cold start: a new process each time, and which heavy modules it imports.

The CLI must answer `--help` without importing torch (it imports the engine inside command
functions). Each sample runs the installed `ecs` script in a fresh interpreter, as a user
would; a separate `python -X importtime` run of the same command lists what was imported.

Run alone: `python -m bench.startup [--quick]`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import median, row

GOAL_S = 0.5
HEAVY = ("torch", "torchvision", "numpy", "sklearn", "textual", "plotext", "safetensors")


def ecs_script() -> str:
    """The `ecs` console script beside this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).with_name("ecs")
    found = str(local) if local.exists() else shutil.which("ecs")
    if found is None:
        raise FileNotFoundError("no `ecs` command found; install the project (make setup)")
    return found


def help_seconds(script: str) -> float:
    """Wall time of one `ecs --help`, from process start to exit."""
    t0 = time.perf_counter()
    subprocess.run([script, "--help"], check=True, capture_output=True)
    return time.perf_counter() - t0


def imported(script: str) -> dict[str, int]:
    """{module: cumulative import microseconds} for one `ecs --help`."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", script, "--help"],
        check=True,
        capture_output=True,
        text=True,
    )
    return parse_importtime(out.stderr)


def parse_importtime(text: str) -> dict[str, int]:
    """`-X importtime` lines ("import time: self | cumulative | name") as {name: cumulative}."""
    mods: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            mods[parts[2].strip()] = int(parts[1])
    return mods


def rows(quick: bool = False) -> list[dict[str, Any]]:
    """One row: median cold start over several runs, and whether torch was imported."""
    script = ecs_script()
    help_seconds(script)  # the first run also warms the OS file cache, as any later one finds it
    times = [help_seconds(script) for _ in range(3 if quick else 9)]
    mods = imported(script)
    tops = {name.split(".")[0] for name in mods}
    heavy = [m for m in HEAVY if m in tops]
    med = median(times)
    cli_ms = mods.get("ecs_tui.cli", 0) / 1000
    note = (
        f"median of {len(times)} runs ({min(times):.2f}-{max(times):.2f} s); "
        f"heavy imports: {', '.join(heavy) if heavy else 'none (torch not imported)'}; "
        f"ecs_tui.cli imports in {cli_ms:.0f} ms"
    )
    return [
        row(
            what="`ecs --help` cold start (new process)",
            reference="—",
            reference_s=None,
            ours_s=med,
            ratio=None,
            goal=f"≤ {GOAL_S} s, torch not imported",
            met=med <= GOAL_S and "torch" not in tops,
            note=note,
        )
    ]


if __name__ == "__main__":
    from bench.common import plain_table

    print(plain_table(rows(quick="--quick" in sys.argv)))
