"""A sweep on Slurm: the cells that are left, submitted as one job array; and each cell's task.

`submit` writes a plain sbatch script into `<sweep>/slurm/` (kept: it is what ran, and `sbatch`
runs it again by hand) whose task i runs cell i as `ecs run ... --run-dir DIR`, which starts
the cell, resumes it from its checkpoint, or skips it when it has finished. It submits the
script and appends the job to `<sweep>/slurm/jobs.jsonl` (job id, the cells in array order),
which is how a cell finds its task later (`cell_tasks`).

Never twice: a submission holds `<sweep>/slurm/.submit.lock` (flock) from listing the cells to
recording the job, and leaves out every cell that has finished, that a process is running
(its run directory's lock), or that a task of an earlier submission still holds in `squeue`.
A task that starts anyway on a cell another holds (a task of a submission made by hand, say)
is refused by the run directory's lock, so no cell ever runs in two processes.

Signals (the script's comment says the same): SIGTERM from Slurm (scancel, scontrol requeue,
preemption) reaches the run, which stops at the next batch and saves, as `ecs run` does on
SIGTERM; Slurm then ends or requeues the task. USR1 to the batch shell (`--signal=B:USR1@S`,
S seconds before the time limit) makes the shell stop the run the same way and requeue the
task itself. A requeued task resumes its cell from the last checkpoint.

Torch-free: the CLI, `ecs runs` and the app read cell states through here.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ecs_core import safeio
from ecs_core.runfiles import RUNNING, run_state
from ecs_core.sweepplan import write_plan

FOLDER = "slurm"
"""Under the sweep directory: the scripts, jobs.jsonl, the tasks' logs."""
JOBS = "jobs.jsonl"
MAX_JOBS = 16 << 20
"""The largest jobs.jsonl read: a line per submission, about 100 bytes per cell it holds, so
this is over 100,000 submitted cells."""
JOBS_FIX = "restore it, or move it aside to submit the sweep afresh"
"""What to do with a jobs.jsonl that cannot be read (cells it held are then submitted again;
a task that finds its cell running in another is refused by the run's lock)."""
SUBMIT_LOCK = ".submit.lock"
REQUEUE_SIGNAL_S = 180
"""`--signal=B:USR1@180`: seconds before the time limit that the run is told to save."""
QUERY_TIMEOUT_S = 10.0
ACTIVE = (
    "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
    "REQUEUE_FED", "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "PREEMPTED",
)  # fmt: skip
"""Slurm job states of a task that still holds its cell (it runs, or will)."""
QUEUED = "queued"
"""A cell's first word while its task waits in the queue (Slurm's PENDING): `cell_state`."""


class SlurmError(RuntimeError):
    """A Slurm command failed or is missing; the message says what to do."""


@dataclass(frozen=True)
class SbatchOptions:
    """What each array task asks Slurm for (None: the cluster's default)."""

    partition: str | None = None
    time: str | None = None
    """Time limit per task, as sbatch takes it (e.g. 4:00:00, 1-0)."""
    gpus_per_cell: int | None = None
    """None: `nproc` GPUs when nproc > 1, else none (0: none even then, DDP on CPUs)."""
    cpus_per_cell: int = 1
    mem: str | None = None
    """Memory per task, as sbatch takes it (e.g. 16G)."""
    max_parallel: int | None = None
    """The array's %K throttle: at most K tasks at once."""
    account: str | None = None
    qos: str | None = None
    extra: tuple[str, ...] = ()
    """More #SBATCH lines, e.g. ("--constraint=a100",); written last, so they win."""
    nproc: int = 1
    """Processes per cell (torchrun, one GPU each, on one node)."""

    def lines(self, name: str, size: int, logs: Path) -> list[str]:
        """The #SBATCH options of an array of `size` tasks."""
        throttle = f"%{self.max_parallel}" if self.max_parallel else ""
        out = [f"--job-name=ecs-{name}", f"--array=0-{size - 1}{throttle}",
               f"--output={logs}/%A_%a.out", "--open-mode=append", "--requeue",
               f"--signal=B:USR1@{REQUEUE_SIGNAL_S}", "--nodes=1", "--ntasks=1",
               f"--cpus-per-task={self.cpus_per_cell}"]  # fmt: skip
        gpus = self.gpus_per_cell
        gpus = (self.nproc if self.nproc > 1 else 0) if gpus is None else gpus
        out += [f"--gres=gpu:{gpus}"] if gpus else []
        asked = {"partition": self.partition, "time": self.time, "mem": self.mem}
        asked.update(account=self.account, qos=self.qos)
        for flag, value in asked.items():
            if value:
                out.append(f"--{flag}={value}")
        return out + [line.strip() for line in self.extra]


@dataclass(frozen=True)
class Task:
    """One array task as Slurm reports it."""

    job: str
    """The array's job id."""
    index: int
    state: str
    """Slurm's word: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ..."""
    reason: str = ""
    """Why it waits (squeue) or how it ended (sacct/scontrol), e.g. Priority, NonZeroExitCode."""

    @property
    def id(self) -> str:
        return f"{self.job}_{self.index}"

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


@dataclass
class Submission:
    """What `submit` did: the job (None: nothing was left to submit) and what it left out."""

    job: str | None
    script: Path | None
    cells: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    """Cell name -> why it was left out (finished, running, or the task that holds it)."""


SCRIPT_HEAD = """\
# Generated by `ecs sweep --slurm` (ecs-tui); submitted as is, kept as the record of what ran.
# Task i runs cell i with `ecs run ... --run-dir DIR`: it starts the cell, resumes it from its
# last checkpoint, or does nothing if it has finished (a cell another process runs is refused).
# SIGTERM from Slurm (scancel, scontrol requeue, preemption) reaches the run: it stops at the
# next batch and saves; the shell waits for it. USR1 to this shell ({s} s before the time limit,
# or `scancel --batch --signal=USR1 JOB_TASK`): the run saves, then the task requeues itself.
"""
SCRIPT_BODY = """\
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} MKL_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
case "$SLURM_ARRAY_TASK_ID" in
%s
  *) echo "no cell for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;
esac
requeue() {
  kill -TERM "$pid" 2>/dev/null; wait "$pid"
  echo "USR1: the run saved; requeueing ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" >&2
  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; exit 0
}
finish() { wait "$pid"; exit $?; }
trap requeue USR1
trap finish TERM
task=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
echo "$(date -u +%%FT%%T.%%3NZ) $task (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname): $cell" >&2
"${cmd[@]}" &
pid=$!
wait "$pid"
exit $?
"""


def script_text(name: str, commands: Sequence[tuple[str, list[str]]], options: SbatchOptions,
                logs: Path) -> str:  # fmt: skip
    """The sbatch script of an array whose task i runs `commands[i]` = (cell name, argv)."""
    sbatch = [f"#SBATCH {line}" for line in options.lines(name, len(commands), logs)]
    cases = [f"  {i}) cell={shlex.quote(cell)}; cmd=({shlex.join(argv)}) ;;"
             for i, (cell, argv) in enumerate(commands)]  # fmt: skip
    head = SCRIPT_HEAD.format(s=REQUEUE_SIGNAL_S)
    return "#!/bin/bash\n" + "\n".join(sbatch) + "\n" + head + SCRIPT_BODY % "\n".join(cases)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SlurmError(f"{name} is not on PATH: run this on a Slurm login node")
    return path


def _call(argv: list[str], timeout: float = QUERY_TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{Path(argv[0]).name} did not answer in {timeout:g} s") from None
    except OSError as exc:
        raise SlurmError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None


@contextmanager
def submit_lock(sweep_dir: Path) -> Iterator[None]:
    """One submission of this sweep at a time (others wait for it)."""
    folder = Path(sweep_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / SUBMIT_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_jobs(sweep_dir: Path) -> list[dict]:
    """The submissions recorded in jobs.jsonl, oldest first; [] where none was. A damaged line
    (cut by a crash while it was appended, not JSON, not UTF-8) is skipped. The file is read
    through `safeio` (a sweep directory may come from anyone): one that is not a regular file,
    is larger than `MAX_JOBS` or cannot be read raises `SlurmError`, one line, so nothing is
    submitted or cancelled without knowing what the sweep's earlier jobs hold."""
    path = Path(sweep_dir) / FOLDER / JOBS
    try:
        data = safeio.read_bytes(path, MAX_JOBS, "Slurm job list", JOBS_FIX)
    except FileNotFoundError:
        return []
    except safeio.FileRefused as exc:
        raise SlurmError(str(exc)) from None
    except OSError as exc:
        raise SlurmError(f"cannot read {path} ({exc.strerror or exc}): {JOBS_FIX}") from None
    out = []
    for line in data.splitlines():
        try:
            job = json.loads(line)  # bytes: bad UTF-8 is a ValueError too
        except ValueError:
            continue
        if isinstance(job, dict) and isinstance(job.get("cells"), list) and job.get("job"):
            out.append(job)
    return out


def submit(sweep_dir: Path, cells: Sequence, commands: Sequence[list[str]], name: str,
           options: SbatchOptions) -> Submission:  # fmt: skip
    """Submit the cells (each with its `ecs run` argv) that are neither finished, running, nor
    held by a task still in the queue, as one array; record it. Raises `SlurmError`."""
    sweep_dir = Path(sweep_dir)
    sbatch = _tool("sbatch")
    with submit_lock(sweep_dir):
        held = {c: t for c, t in cell_tasks(sweep_dir, ended=False).items() if t.active}
        write_plan(sweep_dir, [cell.name for cell in cells])  # (after jobs.jsonl was read)
        todo, skipped = [], {}
        for cell, argv in zip(cells, commands, strict=True):
            state = run_state(cell.path)
            if state in ("finished", "running"):
                skipped[cell.name] = state
            elif cell.name in held:
                skipped[cell.name] = f"{held[cell.name].state.lower()} as {held[cell.name].id}"
            else:
                todo.append((cell, argv))
        if not todo:
            return Submission(None, None, [], skipped)
        folder = sweep_dir / FOLDER
        (folder / "logs").mkdir(parents=True, exist_ok=True)
        number = len(list(folder.glob("submit-*.sbatch"))) + 1
        script = folder / f"submit-{number}.sbatch"
        commands_ = [(cell.name, argv) for cell, argv in todo]
        script.write_text(script_text(name, commands_, options, (folder / "logs").resolve()))
        done = _call([sbatch, "--parsable", str(script)], timeout=120)
        if done.returncode != 0:
            why = " ".join(done.stderr.split()) or f"exit {done.returncode}"
            raise SlurmError(f"sbatch refused {script}: {why}")
        job = done.stdout.strip().split(";")[0]
        record = {"job": job, "script": script.name, "cells": [c.name for c, _ in todo],
                  "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
        with open(folder / JOBS, "a") as f:
            f.write(json.dumps(record) + "\n")
        _write_configs([cell for cell, _ in todo])
        return Submission(job, script, record["cells"], skipped)


def _write_configs(cells: Sequence) -> None:
    """config.json of each new cell, so that `ecs runs` lists it while it is queued (a task
    that started meanwhile has written its own)."""
    from ecs_core.store import StoreError
    from ecs_core.sweep.cells import open_run_dir

    for cell in cells:
        if run_state(cell.path) == "new":
            try:
                open_run_dir(cell.path, cell.config)
            except StoreError:
                pass


def _squeue(jobs: set[str], timeout: float) -> dict[tuple[str, int], Task]:
    """Every task of `jobs` that Slurm still queues or runs."""
    done = _call([_tool("squeue"), "--noheader", "--array", "--me",
                  "--format=%F|%K|%T|%r"], timeout)  # fmt: skip
    if done.returncode != 0:
        raise SlurmError(f"squeue failed: {' '.join(done.stderr.split())}")
    out = {}
    for line in done.stdout.splitlines():
        job, index, state, reason = (line.split("|") + ["", "", "", ""])[:4]
        if job in jobs and index.isdigit():
            out[(job, int(index))] = Task(job, int(index), state, reason)
    return out


def _ended(jobs: set[str], timeout: float) -> dict[tuple[str, int], Task]:
    """How tasks that left the queue ended: sacct, or without accounting storage `scontrol show
    job` (which remembers a job for the cluster's MinJobAge, 300 s by default); else nothing."""
    out: dict[tuple[str, int], Task] = {}
    sacct = shutil.which("sacct")
    if sacct:
        ids = ",".join(sorted(jobs))
        done = _call([sacct, "--noheader", "--parsable2", "--allocations", f"--jobs={ids}",
                      "--format=JobID,State,Reason"], timeout)  # fmt: skip
        if done.returncode == 0:
            for line in done.stdout.splitlines():
                jid, state, reason = (line.split("|") + ["", "", ""])[:3]
                job, _, index = jid.partition("_")
                if job in jobs and index.isdigit():  # a pending range "12_[3-5]" is not a task
                    out[(job, int(index))] = Task(job, int(index), state.split()[0], reason)
            return out
    scontrol = shutil.which("scontrol")
    for job in sorted(jobs) if scontrol else ():
        done = _call([scontrol, "--oneliner", "show", "job", job], timeout)
        for line in done.stdout.splitlines() if done.returncode == 0 else ():
            f = dict(w.split("=", 1) for w in line.split() if "=" in w)
            if f.get("ArrayJobId") == job and f.get("ArrayTaskId", "").isdigit():
                index = int(f["ArrayTaskId"])
                out[(job, index)] = Task(job, index, f.get("JobState", ""), f.get("Reason", ""))
    return out


def cell_tasks(
    sweep_dir: Path, ended: bool = True, timeout: float = QUERY_TIMEOUT_S
) -> dict[str, Task]:
    """Each submitted cell's latest task, by cell name: queued or running (squeue), and with
    `ended` how it ended when sacct or scontrol still knows. {} for a sweep never submitted.
    Raises `SlurmError` when squeue fails or is slow."""
    records = read_jobs(sweep_dir)
    if not records:
        return {}
    jobs = {str(r["job"]) for r in records}
    tasks = _squeue(jobs, timeout)
    if ended:
        sizes = {str(r["job"]): len(r["cells"]) for r in records}
        queued = {j: sum(k[0] == j for k in tasks) for j in jobs}
        for key, task in _ended({j for j in jobs if queued[j] < sizes[j]}, timeout).items():
            tasks.setdefault(key, task)
    out: dict[str, Task] = {}
    for record in records:  # later submissions win
        for index, cell in enumerate(record["cells"]):
            task = tasks.get((str(record["job"]), index))
            if task is not None or cell not in out:
                out[cell] = task or Task(str(record["job"]), index, "UNKNOWN")
    return out


def cell_state(state: str, task: Task | None) -> str:
    """One cell's words: its run's state (`runfiles.STATES`) with its Slurm task's, e.g.
    `queued 12_3 (Priority)`, `running 12_3`, `stopped (cancelled 12_3: ...)`."""
    if task is None or task.state == "UNKNOWN" or state == "finished":
        return state
    if task.active and (state == RUNNING.word or task.state != "PENDING"):
        return f"{RUNNING.word} {task.id}"
    if task.active:
        why = f" ({task.reason})" if task.reason not in ("", "None") else ""
        return f"{QUEUED} {task.id}{why}"
    if task.state == "COMPLETED":
        return state
    why = f": {task.reason}" if task.reason not in ("", "None") else ""
    return f"{state} ({task.state.lower()} {task.id}{why})"


def cancel(sweep_dir: Path) -> list[str]:
    """scancel every task of this sweep still queued or running; the ids cancelled. A running
    cell stops at its next batch and saves (SIGTERM), so every cell can be resumed."""
    held = sorted({t.id for t in cell_tasks(sweep_dir, ended=False).values() if t.active})
    if held:
        done = _call([_tool("scancel"), *held], timeout=60)
        if done.returncode != 0:
            raise SlurmError(f"scancel failed: {' '.join(done.stderr.split())}")
    return held


def slurm_words(
    runs: Sequence[tuple[str, str]], timeout: float = QUERY_TIMEOUT_S
) -> tuple[dict[str, str], str | None]:
    """For listings (`ecs runs`, the app): {run path: `cell_state`} for the runs, given as
    (path, state), that are cells of a sweep submitted to Slurm, where Slurm adds something to
    the run's own state; and a note when Slurm could not be asked (the states then are the
    runs' own). Never raises; at most `timeout` seconds per sweep."""
    sweeps: dict[Path, list[tuple[str, str]]] = {}
    for path, state in runs:
        parent = Path(path).parent
        if (parent / FOLDER / JOBS).is_file():
            sweeps.setdefault(parent, []).append((path, state))
    words: dict[str, str] = {}
    for sweep, members in sweeps.items():
        try:
            tasks = cell_tasks(sweep, timeout=timeout)
        except SlurmError as exc:
            return words, f"no Slurm states: {exc}"
        for path, state in members:
            word = cell_state(state, tasks.get(Path(path).name))
            if word != state:
                words[path] = word
    return words, None
