"""`ecs sweep --slurm` against a real single-node Slurm cluster (bench/slurm_cluster.py).

The cluster is tests/conftest.py's `cluster` fixture: it starts once for the session (root,
Debian's slurm-wlm and munge; `.ci/run` installs them) and the tests that use it are skipped,
with the reason, where it cannot start. Every cell is a tiny
run (1/8-width VGG16 on digits, a few batches), and each task gets one core
(OMP_NUM_THREADS=1), so the local reference runs with one thread too.

A requeued task waits for Slurm's requeue delay (its BeginTime, cred_expire + 1 s after the
requeue), which the cluster shortens to CRED_EXPIRE_S + 1 s. The tests wait for it rather than
moving the begin time to now: a task that starts again in the second it was requeued is refused
by slurmd (its new credential is no newer than the one revoked at the requeue: "Job credential
revoked") and ends FAILED, its cell stopped: `scontrol update StartTime=now` right after the
requeue did that in about one run of four. A wait that fails says each task's state, the task
logs and the daemons' last log lines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.slurm_cluster import Cluster
from ecs_core.runfiles import run_state
from ecs_core.runlock import running_pid
from ecs_core.slurm import cell_tasks, read_jobs
from tests.tiny import tiny_args

pytestmark = pytest.mark.slow

TINY = ["--dataset", "digits", "--device", "cpu"]
SIX = [*TINY, *tiny_args(max_batches=2), "--methods", "snip,ecs,random", "--seeds", "0,1"]
LONG = [*TINY, *tiny_args(epochs=5, max_batches=8, step_size=2), "--method", "snip"]
"""One cell long enough to be interrupted after its first epoch (4 epochs are left)."""
KEYS = ("test_acc", "test_loss", "train_loss", "density", "epochs_done")
WAIT_S = 300.0


def ecs(*args: str, threads: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ecs_tui.cli", *args], capture_output=True,
                          text=True, timeout=WAIT_S, env=env)  # fmt: skip


def slurm(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def submit(root: Path, name: str, args: list[str]) -> subprocess.CompletedProcess:
    done = ecs("sweep", *args, "--runs-dir", str(root), "--name", name, "--slurm")
    assert done.returncode == 0, done.stderr
    return done


def cells(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if (p / "config.json").is_file())


def wait_for(what: str, sweep: Path, ready: Callable[[], bool],
             stuck: Callable[[], bool] = lambda: False) -> None:  # fmt: skip
    """Wait until `ready()`; fail, saying what Slurm did, after WAIT_S or as soon as `stuck()`."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if stuck():
            pytest.fail(
                f"{what} will not come: no task of the sweep is left\n{what_happened(sweep)}"
            )
        time.sleep(0.5)
    pytest.fail(f"waited {WAIT_S:.0f} s for {what}\n{what_happened(sweep)}")


TASK_FIELDS = re.compile(r"\b(JobId|ArrayTaskId|JobState|Reason|Restarts|ExitCode|EligibleTime|"
                         r"StartTime|EndTime)=\S+")  # fmt: skip


def what_happened(sweep: Path) -> str:
    """Each task of the sweep as `scontrol show job` has it, the cells' states, the task logs
    and the last lines of slurmctld's and slurmd's logs."""
    out = []
    for job in read_jobs(sweep):
        shown = subprocess.run(["scontrol", "show", "job", "-o", str(job["job"])], text=True,
                               capture_output=True, timeout=30)  # fmt: skip
        out += [" ".join(m.group(0) for m in TASK_FIELDS.finditer(line))
                for line in shown.stdout.splitlines()] or [shown.stderr.strip()]  # fmt: skip
    out.append("cells: " + ", ".join(f"{c.name} {run_state(c)}" for c in cells(sweep)))
    for log in sorted((sweep / "slurm" / "logs").glob("*.out")):
        out.append(f"--- {log}\n{log.read_text(errors='replace')[-4000:]}")
    out.append(Cluster(Path(os.environ["SLURM_CONF"]).parent).log_tails())
    return "\n".join(out)


def finished(sweep: Path, n: int) -> None:
    """Wait until the sweep's n cells have finished and no task of it is left in the queue (fail
    at once when no task is left and they have not)."""

    def done() -> bool:
        return len(cells(sweep)) == n and all(run_state(c) == "finished" for c in cells(sweep))

    # the queue first: a cell cannot finish once no task is left to run it
    wait_for(f"{n} finished cells", sweep, lambda: not queued(sweep) and done(),
             stuck=lambda: not queued(sweep) and not done())  # fmt: skip


def queued(sweep: Path) -> list[str]:
    return sorted(t.id for t in cell_tasks(sweep, ended=False).values() if t.active)


def events(cell: Path) -> list[dict]:
    return [json.loads(line) for line in (cell / "events.jsonl").read_text().splitlines()]


def summary(cell: Path) -> dict:
    return json.loads((cell / "summary.json").read_text())


def same(a: dict, b: dict) -> None:
    for k in KEYS:
        assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-9), k


def after_first_epoch(cell: Path) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return any(e["event"] == "epoch_end" for e in events(cell))
        except (OSError, ValueError):
            return False

    return ready


def only_task(sweep: Path) -> str:
    (task,) = cell_tasks(sweep, ended=False).values()
    return task.id


@pytest.fixture(scope="module")
def six(cluster, tmp_path_factory) -> Path:
    """The 6-cell sweep, submitted once and finished."""
    root = tmp_path_factory.mktemp("six")
    done = submit(root, "six", SIX)
    assert "submitted 6 cell(s) as job array" in done.stdout
    finished(root / "six", 6)
    return root / "six"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The LONG cell run locally, never interrupted (one thread, as a task has)."""
    root = tmp_path_factory.mktemp("ref")
    done = ecs("run", *LONG, "--runs-dir", str(root))
    assert done.returncode == 0, done.stderr
    (cell,) = [p for p in root.iterdir() if p.is_dir()]
    return summary(cell)


def test_six_cells_finish_with_the_results_of_the_same_sweep_run_locally(six, tmp_path):
    local = ecs("sweep", *SIX, "--runs-dir", str(tmp_path), "--name", "six", "--gpus", "none")
    assert local.returncode == 0, local.stderr
    names = [c.name for c in cells(six)]
    assert names == [c.name for c in cells(tmp_path / "six")] and len(names) == 6
    for name in names:
        same(summary(six / name), summary(tmp_path / "six" / name))
    status = ecs("sweep", str(six), "--status")
    assert status.returncode == 0, status.stderr
    assert "6 cells: 6 finished" in status.stdout


def test_resubmitting_a_finished_sweep_submits_nothing(six):
    before = read_jobs(six)
    again = ecs("sweep", *SIX, "--runs-dir", str(six.parent), "--name", "six", "--slurm")
    assert again.returncode == 0, again.stderr
    assert "nothing to submit" in again.stdout and "6 finished" in again.stdout
    assert read_jobs(six) == before


@pytest.mark.parametrize("how", ["usr1-before-time-limit", "scontrol-requeue"])
def test_a_task_requeued_mid_training_ends_with_the_metrics_of_an_uninterrupted_run(
    cluster, tmp_path, reference, how
):
    submit(tmp_path, "rq", LONG)
    sweep = tmp_path / "rq"
    (cell,) = cells(sweep)
    wait_for("the first epoch", sweep, after_first_epoch(cell))
    task = only_task(sweep)
    if how == "scontrol-requeue":  # SIGTERM to the run, then Slurm requeues the task
        slurm("scontrol", "requeue", task)
    else:  # what --signal=B:USR1@S sends before the time limit: the task requeues itself
        slurm("scancel", "--batch", "--signal=USR1", task)
    finished(sweep, 1)  # the requeued task starts again by itself, after Slurm's requeue delay
    runs = [e.get("status") for e in events(cell) if e["event"] == "run_finished"]
    assert runs == ["stopped", "finished"]
    (log,) = (sweep / "slurm" / "logs").glob("*.out")
    said = [f"{task} (restart 1)", "stopped; continue with"]
    said += [f"USR1: the run saved; requeueing {task}"] if how != "scontrol-requeue" else []
    assert all(line in log.read_text() for line in said), what_happened(sweep)
    same(summary(cell), reference)


def test_a_sigkilled_task_leaves_a_died_cell_that_the_next_submission_resumes(
    cluster, tmp_path, reference
):
    submit(tmp_path, "kill", LONG)
    sweep = tmp_path / "kill"
    (cell,) = cells(sweep)
    wait_for("the first epoch", sweep, after_first_epoch(cell))
    os.kill(running_pid(cell), signal.SIGKILL)  # type: ignore[arg-type]
    wait_for("the task to end", sweep, lambda: not queued(sweep))
    assert run_state(cell) == "died"
    status = ecs("sweep", str(sweep), "--status")
    assert "died (failed" in status.stdout, status.stdout
    again = submit(tmp_path, "kill", LONG)
    assert "submitted 1 cell(s)" in again.stdout
    finished(sweep, 1)
    same(summary(cell), reference)


def test_two_submissions_at_once_run_no_cell_twice(cluster, tmp_path):
    args = [*SIX, "--methods", "snip", "--runs-dir", str(tmp_path), "--name", "twice", "--slurm"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    both = [subprocess.Popen([sys.executable, "-m", "ecs_tui.cli", "sweep", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=WAIT_S) for p in both]
    assert [p.returncode for p in both] == [0, 0], outs
    said = sorted("submitted 2 cell(s)" in out for out, _ in outs)
    assert said == [False, True], outs  # one submitted both cells, the other nothing
    sweep = tmp_path / "twice"
    finished(sweep, 2)
    recorded = [c for job in read_jobs(sweep) for c in job["cells"]]
    assert sorted(recorded) == [c.name for c in cells(sweep)]
    for cell in cells(sweep):
        assert [e["event"] for e in events(cell)].count("run_started") == 1, cell.name


def test_cancel_leaves_every_cell_resumable(cluster, tmp_path):
    args = [*TINY, *tiny_args(epochs=30, max_batches=4), "--methods", "snip,random"]
    submit(tmp_path, "cancel", args)
    sweep = tmp_path / "cancel"
    wait_for("a first epoch", sweep, lambda: any(after_first_epoch(c)() for c in cells(sweep)))
    # the runs are held (SIGSTOP) until the cancel has landed: `ecs sweep --cancel` is a new
    # process, and a fast run could finish its epochs before it (CI saw both cells finished)
    held = [pid for pid in (running_pid(c) for c in cells(sweep)) if pid is not None]
    for pid in held:
        os.kill(pid, signal.SIGSTOP)
    try:
        done = ecs("sweep", str(sweep), "--cancel")
    finally:
        for pid in held:  # Slurm sends SIGCONT before SIGTERM; this covers a late delivery
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert done.returncode == 0 and "cancelled 2 task(s)" in done.stdout, done.stderr
    wait_for("the tasks to end", sweep, lambda: not queued(sweep))
    states = {c.name: run_state(c) for c in cells(sweep)}
    assert set(states.values()) <= {"stopped", "incomplete"}, states  # none died, none done
    assert "stopped" in states.values(), states
    status = ecs("sweep", str(sweep), "--status")
    assert status.stdout.count("(cancelled") == 2, status.stdout
    again = submit(tmp_path, "cancel", args)
    assert "submitted 2 cell(s)" in again.stdout
    finished(sweep, 2)
    for cell in cells(sweep):
        ends = [e.get("status") for e in events(cell) if e["event"] == "run_finished"]
        assert ends[-1] == "finished" and "stopped" in ends or ends == ["finished"], ends


def test_nproc_runs_the_cell_under_torchrun_in_one_task(cluster, tmp_path):
    """--nproc 2 with --gpus-per-cell 0: DDP on two CPU processes (gloo) in one task; the GPU
    request itself (--gres=gpu:N) is only checked in the script (no GPU here)."""
    args = [*TINY, *tiny_args(max_batches=2), "--method", "snip"]
    submit(tmp_path, "ddp", [*args, "--nproc", "2", "--gpus-per-cell", "0", "--cpus-per-cell", "2"])
    sweep = tmp_path / "ddp"
    script = (sweep / "slurm" / "submit-1.sbatch").read_text()
    assert "--nproc 2 --run-dir" in script and "--gres" not in script
    finished(sweep, 1)
    (cell,) = cells(sweep)
    log = next((sweep / "slurm" / "logs").glob("*.out")).read_text()
    assert "finished" in log and summary(cell)["epochs_done"] == 1
    gpus = ecs("sweep", *args, "--runs-dir", str(tmp_path), "--name", "gpu", "--nproc", "4",
               "--slurm", "--partition", "nonesuch")  # fmt: skip
    assert gpus.returncode == 2 and "sbatch refused" in gpus.stderr, gpus.stderr
    assert "--gres=gpu:4" in (tmp_path / "gpu" / "slurm" / "submit-1.sbatch").read_text()
    assert not cells(tmp_path / "gpu")  # nothing submitted, nothing written but the script


def test_bad_options_fail_in_one_line_before_submitting(cluster, tmp_path):
    bad = ecs("sweep", *TINY, "--runs-dir", str(tmp_path), "--max-parallel", "0", "--slurm")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0, bad.stderr
    assert "--max-parallel must be >= 1" in bad.stderr
    local = ecs("sweep", *TINY, "--runs-dir", str(tmp_path), "--nproc", "2")
    assert local.returncode == 2 and "only with --slurm" in local.stderr
    assert not (tmp_path / "sweep" / "slurm").exists()


# --- without a cluster: the script and the words


def test_the_script_asks_for_what_the_options_say_and_extra_lines_come_last(tmp_path):
    from ecs_core.slurm import SbatchOptions, script_text

    options = SbatchOptions(partition="gpu", time="4:00:00", cpus_per_cell=8, mem="16G",
                            max_parallel=3, account="lab", qos="high", nproc=2,
                            extra=("--constraint=a100", "--time=8:00:00"))  # fmt: skip
    text = script_text("demo", [("a b", ["ecs", "run", "--run-dir", "x y"])], options, tmp_path)
    lines = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("#SBATCH")]
    for want in ("--array=0-0%3", "--partition=gpu", "--time=4:00:00", "--cpus-per-task=8",
                 "--mem=16G", "--account=lab", "--qos=high", "--gres=gpu:2", "--requeue",
                 "--signal=B:USR1@180", "--job-name=ecs-demo"):  # fmt: skip
        assert want in lines, want
    assert lines[-2:] == ["--constraint=a100", "--time=8:00:00"]  # the last --time wins
    assert "cell='a b'; cmd=(ecs run --run-dir 'x y')" in text
    assert "--gres" not in script_text("d", [("a", ["x"])], SbatchOptions(), tmp_path)


@pytest.mark.parametrize(
    ("state", "task", "words"),
    [
        ("incomplete", ("PENDING", "Priority"), "queued 7_2 (Priority)"),
        ("stopped", ("PENDING", "BeginTime"), "queued 7_2 (BeginTime)"),
        ("incomplete", ("RUNNING", "None"), "running 7_2"),
        ("running", ("RUNNING", "None"), "running 7_2"),
        ("finished", ("COMPLETED", "None"), "finished"),
        ("finished", ("CANCELLED", "None"), "finished"),
        ("stopped", ("CANCELLED", "None"), "stopped (cancelled 7_2)"),
        ("died", ("FAILED", "NonZeroExitCode"), "died (failed 7_2: NonZeroExitCode)"),
        ("stopped", ("TIMEOUT", "TimeLimit"), "stopped (timeout 7_2: TimeLimit)"),
        ("died", None, "died"),
    ],
)
def test_a_cell_says_its_run_state_with_what_slurm_adds(state, task, words):
    from ecs_core.slurm import Task, cell_state

    assert cell_state(state, Task("7", 2, *task) if task else None) == words


def test_a_slow_squeue_gives_the_runs_own_states_and_a_note_after_the_timeout(
    tmp_path, monkeypatch
):
    """What the app's Runs tab calls in its worker: it returns after `timeout`, never hangs."""
    from ecs_core.slurm import FOLDER, JOBS, slurm_words

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\nsleep 30\n")
    (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    sweep = tmp_path / "sweep"
    (sweep / FOLDER).mkdir(parents=True)
    (sweep / FOLDER / JOBS).write_text(json.dumps({"job": "7", "cells": ["a"]}) + "\n")
    words, note = slurm_words([(str(sweep / "a"), "stopped")], timeout=0.5)
    assert words == {} and note == "no Slurm states: squeue did not answer in 0.5 s"


def fake_squeue(folder: Path, lines: str, monkeypatch) -> None:
    """A `squeue` on PATH that prints `lines` (squeue's --format=%F|%K|%T|%r rows)."""
    folder.mkdir()
    (folder / "squeue").write_text(f"#!/bin/sh\nprintf '{lines}'\n")
    (folder / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")


def test_the_apps_sweep_view_shows_a_queued_cells_task(tmp_path, monkeypatch):
    import asyncio

    from textual.widgets import DataTable

    from ecs_core.config import RunConfig
    from ecs_core.slurm import FOLDER, JOBS
    from ecs_core.store import RunStore
    from ecs_tui.app import EcsApp
    from ecs_tui.widgets.runs import RunsView

    fake_squeue(tmp_path / "bin", "7|0|PENDING|Priority\\n", monkeypatch)
    sweep = tmp_path / "sweep"
    cell = sweep / "vgg16-digits-snip-d0.05-s0"
    cell.mkdir(parents=True)
    RunStore(cell).write_config(RunConfig(dataset="digits", method="snip"))
    (sweep / FOLDER).mkdir()
    (sweep / FOLDER / JOBS).write_text(json.dumps({"job": "7", "cells": [cell.name]}) + "\n")

    async def drawn() -> list:
        app = EcsApp(runs=sweep)
        async with app.run_test(size=(120, 30)) as pilot:
            for _ in range(400):
                table = app.query_one(RunsView).query_one(DataTable)
                if table.row_count:
                    return [str(v) for v in table.get_row_at(0)]
                await pilot.pause(0.05)
        return []

    assert "queued 7_0 (Priority)" in asyncio.run(drawn())


def test_a_submission_writes_the_sweeps_plan_first(tmp_path, monkeypatch):
    """The plan (every cell of the command, in order) is there when sbatch runs, so the app
    counts the cells still to come."""
    from ecs_core.config import RunConfig
    from ecs_core.slurm import SbatchOptions, submit
    from ecs_core.sweep import Grid, make_cells
    from ecs_core.sweepplan import PLAN, planned_cells

    sweep = tmp_path / "runs" / "demo"
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    seen = tmp_path / "seen.json"
    (bin_ / "sbatch").write_text(f"#!/bin/sh\ncp {sweep / PLAN} {seen}\necho 42\n")
    (bin_ / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")
    cells = make_cells(Grid(methods=("snip", "ecs"), seeds=(0, 1)),
                       RunConfig(dataset="digits"), tmp_path / "runs", "demo")  # fmt: skip
    done = submit(sweep, cells, [["true"]] * len(cells), "demo", SbatchOptions())
    assert done.job == "42"
    assert planned_cells(sweep) == [c.name for c in cells]
    assert json.loads(seen.read_text())["cells"] == [c.name for c in cells]


def test_the_sweep_line_counts_queued_and_planned_cells_as_waiting(tmp_path, monkeypatch):
    """3 of 4 cells not started: one requeued (its run died, its task pending), one queued with
    only its config, one planned with no directory; the fourth's task runs before its run has
    taken the lock. Before plans and the Slurm words were counted, the line said `0 running · 2
    waiting · 1 died`."""
    import asyncio

    from ecs_core.config import RunConfig
    from ecs_core.runlock import LOCK_NAME
    from ecs_core.slurm import FOLDER, JOBS
    from ecs_core.store import RunStore
    from ecs_core.sweepplan import write_plan
    from ecs_tui.app import EcsApp
    from ecs_tui.widgets.runs import RunsView

    fake_squeue(tmp_path / "bin", "7|0|PENDING|BeginTime\\n7|1|PENDING|Priority\\n"
                "7|2|RUNNING|None\\n", monkeypatch)  # fmt: skip
    sweep = tmp_path / "sweep"
    names = [f"vgg16-digits-snip-d0.05-s{seed}" for seed in range(4)]
    for name in names[:3]:
        (sweep / name).mkdir(parents=True)
        RunStore(sweep / name).write_config(RunConfig(dataset="digits", method="snip"))
    (sweep / names[0] / "events.jsonl").write_text("")
    (sweep / names[0] / LOCK_NAME).write_text("")  # took the lock, nobody holds it: died
    (sweep / FOLDER).mkdir()
    (sweep / FOLDER / JOBS).write_text(json.dumps({"job": "7", "cells": names[:3]}) + "\n")
    write_plan(sweep, names)

    async def line() -> str:
        app = EcsApp(runs=sweep)
        async with app.run_test(size=(120, 30)) as pilot:
            view = app.query_one(RunsView)
            for _ in range(400):
                if view.infos:
                    await pilot.pause()
                    return str(view.query_one(".view-note").render())
                await pilot.pause(0.05)
        return ""

    assert "0 done · 1 running · 3 waiting · 0 died" in asyncio.run(line())


def _sweep_with_jobs(tmp_path: Path, monkeypatch) -> tuple[Path, Path, Path]:
    """A submitted sweep dir (its cell `a` run), with a fake sbatch/squeue/scancel on PATH that
    record being called; (sweep, jobs.jsonl, the record)."""
    from ecs_core.slurm import FOLDER, JOBS

    called = tmp_path / "called"
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("sbatch", "squeue", "scancel"):
        (bin_ / tool).write_text(f"#!/bin/sh\necho {tool} >> {called}\necho 42\n")
        (bin_ / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")
    sweep = tmp_path / "runs" / "demo"
    (sweep / FOLDER).mkdir(parents=True)
    return sweep, sweep / FOLDER / JOBS, called


def test_an_oversized_job_list_is_refused_in_one_line_and_left_as_it_is(tmp_path, monkeypatch):
    """jobs.jsonl is read through safeio: one larger than MAX_JOBS (a sparse file here) stops
    a submission and a cancel with one line, exit 2, before Slurm is asked or anything written;
    --status lists the cells with a note."""
    from ecs_core.slurm import MAX_JOBS, SUBMIT_LOCK, SlurmError, read_jobs

    sweep, jobs, called = _sweep_with_jobs(tmp_path, monkeypatch)
    with open(jobs, "wb") as f:
        f.truncate(MAX_JOBS + 1)
    with pytest.raises(SlurmError, match="larger than a Slurm job list can be"):
        read_jobs(sweep)
    before = sorted(p.name for p in sweep.rglob("*"))
    args = ["--runs-dir", str(sweep.parent), "--name", "demo", "--slurm", "--method", "snip"]
    for argv in (["sweep", str(sweep), "--cancel"], ["sweep", *TINY, *args]):
        done = ecs(*argv)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"error: {jobs} is larger than a Slurm job list can be")
        assert "move it aside" in done.stderr
    after = sorted(p.name for p in sweep.rglob("*") if p.name != SUBMIT_LOCK)
    assert after == before  # no plan, script or cell
    assert jobs.stat().st_size == MAX_JOBS + 1 and not called.exists()
    from ecs_core.config import RunConfig
    from ecs_core.store import RunStore

    (sweep / "a").mkdir()
    RunStore(sweep / "a").write_config(RunConfig(dataset="digits", method="snip"))
    status = ecs("sweep", str(sweep), "--status")
    assert status.returncode == 0 and "1 cells: 1 incomplete" in status.stdout, status.stderr
    assert status.stderr.startswith(f"(no Slurm states: {jobs} is larger than")
    assert status.stderr.count("\n") == 1 and not called.exists()


def test_a_damaged_job_list_keeps_its_good_lines_and_a_non_file_is_refused(tmp_path, monkeypatch):
    """A line cut by a crash, one not UTF-8, one not a job: skipped, the others kept (not
    UTF-8 used to end `--status` in a traceback); a directory in its place: one line."""
    from ecs_core.slurm import SlurmError, read_jobs

    sweep, jobs, _ = _sweep_with_jobs(tmp_path, monkeypatch)
    good = [{"job": "7", "cells": ["a", "b"]}, {"job": "9", "cells": ["c"]}]
    jobs.write_bytes(json.dumps(good[0]).encode() + b"\n\xff\xfe not utf-8\n[1, 2]\n"
                     + json.dumps(good[1]).encode() + b'\n{"job": "11", "ce')  # fmt: skip
    assert read_jobs(sweep) == good
    jobs.unlink()
    assert read_jobs(sweep) == []
    jobs.mkdir()
    with pytest.raises(SlurmError, match="is a directory, not a regular file") as exc:
        read_jobs(sweep)
    assert "\n" not in str(exc.value)
