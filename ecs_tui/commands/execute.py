"""Running `ecs run`'s work: the pipeline in this process with signals and a printer
(`execute`), or under torchrun for several GPUs (`launch_ddp`)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import typer

from ecs_core.config import ConfigError, RunConfig
from ecs_core.runfiles import STOPPED
from ecs_tui.commands.argv import config_to_args
from ecs_tui.commands.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_STOPPED, fail


def execute(config: RunConfig, store: object | None, as_json: bool) -> int:
    """Run the pipeline with signal handling and a printer; return the exit code."""
    from ecs_core.distributed import env_rank
    from ecs_core.pipeline import ResumeError, run
    from ecs_tui.printers import SilentPrinter, make_printer

    stop = threading.Event()
    restore = install_signals(stop)
    # torchrun: rank 0 speaks for the run; the other ranks print nothing (errors still show)
    printer = make_printer(as_json, sys.stdout) if env_rank() == 0 else SilentPrinter()
    started = False
    last = None
    run_dir = None
    try:
        for event in run(config, store=store, stop=stop, resume=store is not None):  # type: ignore[arg-type]
            if event.kind == "run_started":
                started, run_dir = True, event.run_dir
            last = event
            printer.handle(event)
    except KeyboardInterrupt:
        printer.close()
        typer.echo("interrupted at once; the last checkpoint is intact", err=True)
        return EXIT_STOPPED
    except (ConfigError, ResumeError) as exc:
        printer.close()
        raise fail(str(exc)) from None
    except Exception as exc:  # every failure ends in one line, never a traceback
        from ecs_core.errors import explain

        printer.close()
        code = EXIT_FAILED if started else EXIT_BAD_INPUT
        where = f" (run directory: {run_dir})" if run_dir else ""
        raise fail(f"{explain(exc, config)}{where}", code) from None
    finally:
        restore()
    printer.close()
    if last is not None and last.kind == "run_finished" and last.status == STOPPED.word:
        run_dir = run_dir or "RUN_DIR"  # where it is now, even if summary.json says elsewhere
        from ecs_core.runfiles import resume_command

        typer.echo(f"stopped; continue with: {resume_command(run_dir)}", err=True)
        return EXIT_STOPPED
    return 0


def install_signals(stop: threading.Event):
    """First Ctrl-C / SIGTERM: stop at the next batch boundary. Second: stop at once."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        name = signal.Signals(signum).name
        print(
            f"\n{name}: finishing the current batch, then saving (again to quit at once)",
            file=sys.stderr,
            flush=True,
        )

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore


def launch_ddp(config: RunConfig, nproc: int, resume: Path | None, as_json: bool) -> int:
    """`ecs run --nproc N`: the same run under torchrun, N processes (GPUs) on this machine.

    torchrun runs in a session of its own, so a Ctrl-C reaches the workers once (passed on by
    torchrun): they stop together at a batch boundary and rank 0 saves, as `ecs run` does.
    Output is rank 0's (`--local-ranks-filter 0`).
    """
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "--local-ranks-filter=0",
            "-m", "ecs_tui.cli", "run", *config_to_args(config)]  # fmt: skip
    if resume is not None:
        argv += ["--resume", str(resume)]
    if as_json:
        argv.append("--json")
    proc = subprocess.Popen(argv, start_new_session=True)
    asked: list[int] = []

    def forward(signum: int, frame: object) -> None:
        asked.append(signum)
        proc.send_signal(signal.SIGINT)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return EXIT_STOPPED if asked and code != 0 else code
