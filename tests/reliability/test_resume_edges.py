"""--resume: typed options are never silently replaced; a moved run is named where it is now."""

from __future__ import annotations

import shutil
import signal

from typer.testing import CliRunner

from ecs_tui.cli import app


def _stopped_copy(run_copy):
    (run_copy / "summary.json").unlink()  # as if killed: resumable
    return run_copy


def test_typed_default_that_differs_from_the_saved_run_is_refused(run_copy):
    """The run was saved with --epochs 2; --epochs 70 is the default, but it was typed."""
    run = _stopped_copy(run_copy)
    res = CliRunner().invoke(app, ["run", "--resume", str(run), "--epochs", "70"])
    assert res.exit_code == 2, (res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "differs in: epochs" in lines[0], res.stderr
    assert not (run / "summary.json").exists()


def test_typed_value_equal_to_the_saved_one_is_accepted(run_copy):
    run = _stopped_copy(run_copy)
    res = CliRunner().invoke(
        app, ["run", "--resume", str(run), "--epochs", "2", "--width", "0.125", "--lr", "0.1"]
    )
    assert res.exit_code == 0, (res.output, res.exception)


def test_moved_run_names_its_new_place(proc, tmp_path):
    """Stop a run, move its directory, resume it: the hint and summary.json name the new path."""
    p, old, _ = proc.run_until(
        [*proc.TINY, "--runs-dir", str(tmp_path / "a")],
        lambda e: e["event"] == "checkpoint_saved",
        sig=signal.SIGTERM,
    )
    assert p.returncode == 130, p.stderr.read() if p.stderr else ""
    new = tmp_path / "b" / "moved"
    new.parent.mkdir()
    shutil.move(old, new)
    p, seen_dir, _ = proc.run_until(
        ["--resume", str(new)], lambda e: e["event"] == "batch_progress", sig=signal.SIGTERM
    )
    stderr = p.stderr.read() if p.stderr else ""
    assert p.returncode == 130, stderr
    assert seen_dir == new
    assert f"continue with: ecs run --resume {new}\n" in stderr, stderr
    assert proc.summary(new)["run_dir"] == str(new)
    done = proc.finish(["--resume", str(new)])
    assert done.returncode == 0, done.stderr
    assert proc.summary(new)["run_dir"] == str(new) and str(old) not in done.stdout
