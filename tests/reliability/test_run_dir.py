"""--run-dir never writes into a directory of someone else's files."""

from __future__ import annotations

from typer.testing import CliRunner

from ecs_tui.cli import app
from tests.tiny import tiny_args

TINY = tiny_args(method="snip")


def test_non_empty_foreign_directory_is_refused(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"precious")
    (target / "notes.txt").write_text("keep")
    res = CliRunner().invoke(app, ["run", *TINY, "--run-dir", str(target)])
    assert res.exit_code == 2, (res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not empty and is not a run directory" in lines[0], res.stderr
    assert sorted(p.name for p in target.iterdir()) == ["model.safetensors", "notes.txt"]
    assert (target / "model.safetensors").read_bytes() == b"precious"


def test_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    res = CliRunner().invoke(app, ["run", *TINY, "--run-dir", str(target)])
    assert res.exit_code == 2 and "is a file" in res.stderr, (res.output, res.exception)


def test_empty_or_left_by_a_killed_run_is_used(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    (target / ".lock").write_text("")
    (target / ".config.json.123.tmp").write_text("{")
    res = CliRunner().invoke(app, ["run", *TINY, "--run-dir", str(target)])
    assert res.exit_code == 0, (res.output, res.exception)
    assert (target / "summary.json").is_file()
