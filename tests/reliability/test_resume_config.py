"""--resume compares config.json with the config its checkpoint was saved with: a hand-edited
file is refused naming the fields (main: density 0.05 -> 0.5 resumed with exit 0 and a summary
saying 0.05; epochs 2 -> 3 trained a third epoch). A checkpoint claiming an epoch the run cannot
have reached is refused too. One line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ecs_tui.cli import app


def _stopped(run: Path) -> Path:
    (run / "summary.json").unlink()  # as if killed after its last checkpoint: resumable
    return run


def _snapshot(run: Path) -> dict[str, bytes]:
    """Every file's bytes but the (empty) lock file the resume takes before it reads."""
    files = [p for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"]
    return {str(p.relative_to(run)): p.read_bytes() for p in files}


def _refused(run: Path, needle: str) -> None:
    before = _snapshot(run)
    res = CliRunner().invoke(app, ["run", "--resume", str(run)])
    assert res.exit_code == 2, (res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert _snapshot(run) == before


@pytest.mark.parametrize(("field", "value"), [("density", 0.5), ("epochs", 3)])
def test_an_edited_config_json_is_refused_naming_the_field(run_copy, field, value):
    run = _stopped(run_copy)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, field: value}))
    _refused(run, f"differs in: {field}")


@pytest.mark.parametrize("epoch", [10**18, -5, 2.5])
def test_a_checkpoint_claiming_an_impossible_epoch_is_refused(run_copy, epoch):
    run = _stopped(run_copy)
    path = run / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    torch.save({**state, "epoch": epoch}, path)
    _refused(run, f"claims epoch {epoch!r}")


def test_the_unedited_run_still_resumes(run_copy):
    res = CliRunner().invoke(app, ["run", "--resume", str(_stopped(run_copy))])
    assert res.exit_code == 0, (res.output, res.exception)


def test_a_run_written_before_validate_changed_its_canonical_form_resumes(run_copy):
    """config.json and the checkpoint hold the same config as written; a field today's
    `validate` spells otherwise (ECS's `distribution = "global"`: today auto, its default; a
    dense run's scope, issue 28) is not an edit: the two are compared as written."""
    run = _stopped(run_copy)
    config = {**json.loads((run / "config.json").read_text()), "distribution": "global"}
    (run / "config.json").write_text(json.dumps(config))
    path = run / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    torch.save({**state, "config_json": json.dumps(config)}, path)
    res = CliRunner().invoke(app, ["run", "--resume", str(run)])
    assert res.exit_code == 0, (res.output, res.exception)
