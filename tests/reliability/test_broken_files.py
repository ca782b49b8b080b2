"""Damaged files in a run directory: one line naming the file and the fix, never a traceback;
in a folder, the broken run is listed as broken and every other run still shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from ecs_tui.cli import app


def nested_config(run: Path) -> None:
    (run / "config.json").write_text("[" * 100_000 + "]" * 100_000)


def bad_utf8_events(run: Path) -> None:
    with open(run / "events.jsonl", "ab") as f:
        f.write(b'{"event": "log", "message": "\xff\xfe"}\n\xff\xfe\n')


def renamed_weights(run: Path) -> None:
    state = load_file(run / "model.safetensors")
    save_file({f"x{k}": v for k, v in state.items()}, run / "model.safetensors")


def nan_weights(run: Path) -> None:
    state = load_file(run / "model.safetensors")
    save_file({k: v.fill_(float("nan")) if v.is_floating_point() else v
               for k, v in state.items()}, run / "model.safetensors")  # fmt: skip


def wrong_mask_shapes(run: Path) -> None:
    masks = load_file(run / "masks.safetensors")
    save_file({k: v[:1].contiguous() for k, v in masks.items()}, run / "masks.safetensors")


def one_error_line(res, *fragments: str) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [["report"], ["show", "{run}", "sparsity"], ["run", "--resume"], ["export"]],
    ids=["report", "show", "resume", "export"],
)
def test_deeply_nested_config_is_one_line_per_command(run_copy, command):
    nested_config(run_copy)
    args = [a.format(run=run_copy) for a in command]
    args = args if "{run}" in " ".join(command) else [*args, str(run_copy)]
    res = CliRunner().invoke(app, args)
    one_error_line(res, str(run_copy / "config.json"), "damaged", "restore it")


@pytest.mark.parametrize("command", [["runs"], ["compare"]])
def test_a_broken_run_does_not_hide_the_others(run_copy, command):
    runs = run_copy.parent
    other = runs / "ok-run"
    shutil.copytree(run_copy, other)
    nested_config(run_copy)
    res = CliRunner().invoke(app, [*command, str(runs)])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "Traceback" not in res.output
    broken = [line for line in res.stderr.splitlines() if run_copy.name in line]
    assert len(broken) == 1 and "config.json is damaged" in broken[0], res.stderr
    if command == ["runs"]:
        assert "ok-run" in res.stdout and "unreadable" in res.stdout
    else:
        assert "vgg16" in res.stdout.lower()


@pytest.mark.parametrize("command", [["report"], ["show", "curves"]])
def test_invalid_utf8_in_events_is_skipped(run_copy, command):
    bad_utf8_events(run_copy)
    res = CliRunner().invoke(app, [command[0], str(run_copy), *command[1:], "--width", "80"]
                             if command[0] == "show" else [command[0], str(run_copy)])  # fmt: skip
    assert res.exit_code == 0, (res.output, res.exception)


@pytest.mark.parametrize("view", ["kernels", "clusters"])
def test_weights_without_the_layer_names(run_copy, view):
    renamed_weights(run_copy)
    res = CliRunner().invoke(app, ["show", str(run_copy), view, "--width", "80"])
    one_error_line(res, str(run_copy / "model.safetensors"), "has no tensor", "restore it")


def test_nan_weights_in_clusters(run_copy):
    nan_weights(run_copy)
    res = CliRunner().invoke(app, ["show", str(run_copy), "clusters", "--width", "80"])
    one_error_line(res, str(run_copy / "model.safetensors"), "NaN")


def test_masks_of_the_wrong_shape_in_export(run_copy, tmp_path):
    wrong_mask_shapes(run_copy)
    res = CliRunner().invoke(app, ["export", str(run_copy), "-o", str(tmp_path / "m.ecsz")])
    one_error_line(res, str(run_copy / "masks.safetensors"), "does not fit", "restore it")
    assert not (tmp_path / "m.ecsz").exists()


def test_summary_that_is_not_an_object(run_copy):
    (run_copy / "summary.json").write_text("[1, 2]")
    res = CliRunner().invoke(app, ["run", "--resume", str(run_copy)])
    one_error_line(res, str(run_copy / "summary.json"), "not a JSON object")
