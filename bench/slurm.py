"""`ecs sweep --slurm` on a real single-node Slurm (bench/slurm_cluster.py, needs root and
Debian's slurm-wlm + munge): a 1,000-cell grid submitted as one job array, and what each task
spends before its first batch.

Two rows. (1) The wall time of `ecs sweep ... --slurm` for 1,000 cells (5 methods x 10
densities x 20 seeds, a `--max-batches 1` recipe): a fresh process, as a user runs it, from
start to exit (the script written, config.json of every cell, sbatch). (2) The first tasks'
overhead: from the task's start (the line the sbatch script logs) to the run's first event
(imports, parsing: `run_started`) and to its first training batch (data, model, pruning:
the first `batch_progress`), against the same cell run as `ecs run` from a process started
here. The rest of the array is cancelled after `TASKS` tasks have trained.

Run alone: `python -m bench.slurm [--quick]`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import median, row
from bench.slurm_cluster import Cluster, Unavailable

GOAL_S = 30.0
GRID = ["--methods", "snip,ecs,grasp,synflow,random",
        "--densities", "0.5,0.3,0.2,0.1,0.07,0.05,0.03,0.02,0.01,0.005",
        "--seeds", ",".join(str(s) for s in range(20))]  # fmt: skip
RECIPE = ["--dataset", "digits", "--width", "0.125", "--epochs", "1", "--max-batches", "1",
          "--batch-size", "32", "--no-quantize", "--device", "cpu"]  # fmt: skip
TASKS = 4
WAIT_S = 600.0


def _events(cell: Path) -> list[dict]:
    try:
        lines = (cell / "events.jsonl").read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def _firsts(events: list[dict]) -> tuple[float, float] | None:
    """(t of run_started, t of the first batch_progress) or None if not trained yet."""
    started = next((e["t"] for e in events if e["event"] == "run_started"), None)
    batch = next((e["t"] for e in events if e["event"] == "batch_progress"), None)
    return (started, batch) if started and batch else None


def _task_starts(sweep: Path) -> dict[str, float]:
    """Cell name -> when its task's shell started (the sbatch script's first log line)."""
    out = {}
    for log in (sweep / "slurm" / "logs").glob("*.out"):
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[-1].startswith("vgg16-") and parts[0].endswith("Z"):
                stamp = datetime.fromisoformat(parts[0].replace("Z", "+00:00"))
                out[parts[-1]] = stamp.timestamp()
                break
    return out


def _ecs(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecs_tui.cli", *args], capture_output=True,
                          text=True, env=env, timeout=WAIT_S, check=True)  # fmt: skip


def measure(folder: Path, cluster: Cluster) -> dict[str, Any]:
    env = {**cluster.env, "OMP_NUM_THREADS": "1"}
    runs = folder / "runs"
    t0 = time.perf_counter()
    out = _ecs("sweep", *GRID, *RECIPE, "--runs-dir", str(runs), "--name", "big", "--slurm",
               env=env)  # fmt: skip
    submit_s = time.perf_counter() - t0
    sweep = runs / "big"
    deadline = time.monotonic() + WAIT_S
    trained: dict[str, tuple[float, float]] = {}
    while len(trained) < TASKS and time.monotonic() < deadline:
        for cell in sweep.iterdir():
            firsts = _firsts(_events(cell)) if cell.name not in trained else None
            if firsts:
                trained[cell.name] = firsts
        time.sleep(0.5)
    _ecs("sweep", str(sweep), "--cancel", env=env)
    starts = _task_starts(sweep)
    to_run = [trained[c][0] - starts[c] for c in trained if c in starts]
    to_batch = [trained[c][1] - starts[c] for c in trained if c in starts]
    # the same cell as a plain `ecs run` started here: process start -> first batch
    name = sorted(trained)[0]
    config = json.loads((sweep / name / "config.json").read_text())
    local = folder / "local"
    t1 = time.time()
    _ecs("run", *RECIPE, "--method", config["method"], "--density", str(config["density"]),
         "--seed", str(config["seed"]), "--runs-dir", str(local), env=env)  # fmt: skip
    (ref,) = [_firsts(_events(p)) for p in local.iterdir() if p.is_dir()]
    assert ref is not None
    return dict(submit_s=submit_s, out=out.stdout, to_run=to_run, to_batch=to_batch,
                ref_run=ref[0] - t1, ref_batch=ref[1] - t1)  # fmt: skip


def rows(quick: bool = False) -> list[dict[str, Any]]:
    what = "`ecs sweep --slurm`: 1,000 cells submitted as one job array (local single-node Slurm)"
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        try:
            cluster = Cluster(Path(tmp) / "cluster").start()
        except Unavailable as exc:
            return [row(what, "—", None, None, None, f"≤ {GOAL_S:.0f} s", None,
                        f"skipped: no Slurm cluster ({exc})")]  # fmt: skip
        try:
            m = measure(Path(tmp), cluster)
        finally:
            cluster.stop()
    n = len(m["to_batch"])
    return [
        row(what, "—", None, m["submit_s"], None, f"≤ {GOAL_S:.0f} s",
            m["submit_s"] <= GOAL_S, f"{m['out'].splitlines()[0]}; a new process, "
            "torch imported, 1,000 config.json written, sbatch"),
        row(f"array task: its start -> first training batch (median of the first {n} tasks)",
            "`ecs run` of the same cell: process start -> first batch", m["ref_batch"],
            median(m["to_batch"]), median(m["to_batch"]) / m["ref_batch"], "reported", None,
            f"to the run's first event (imports, config): {median(m['to_run']):.2f} s "
            f"in a task vs {m['ref_run']:.2f} s here; then data, model, pruning, one batch; "
            f"tasks: {', '.join(f'{s:.2f}' for s in m['to_batch'])} s; "
            f"load average {os.getloadavg()[0]:.1f}"),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.common import plain_table

    print(plain_table(rows("--quick" in sys.argv)))
