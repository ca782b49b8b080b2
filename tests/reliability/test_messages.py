"""Every message a user can cause says what is wrong, names the file, and fits on one line."""

from __future__ import annotations

import json
import pickle
import warnings

import pytest
import torch
from typer.testing import CliRunner

from ecs_tui.cli import app
from tests.tiny import tiny_args

TINY = tiny_args(method="snip")


def one_line(res, code: int = 2) -> str:
    assert res.exit_code == code, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output and "Warning" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.mark.parametrize(
    "opt, value, says",
    [("--seed", str(2**70), "--seed must be a 64-bit integer"),
     ("--seed", str(2**64 - 1), "--seed must be a 64-bit integer"),
     ("--lr", "1e308", "--lr must be at most 3.4e+38"),
     ("--weight-decay", "1e39", "--weight-decay must be at most")],
)  # fmt: skip
def test_out_of_range_numbers_are_refused_before_a_run_dir(tmp_path, opt, value, says):
    res = CliRunner().invoke(app, ["run", *TINY, "--runs-dir", str(tmp_path), opt, value])
    assert says in one_line(res)
    assert not any(tmp_path.iterdir())


def test_largest_seed_runs(tmp_path):
    res = CliRunner().invoke(app, ["run", *TINY, "--runs-dir", str(tmp_path),
                                   "--seed", str(2**63 - 1)])  # fmt: skip
    assert res.exit_code == 0, (res.output, res.exception)


def _damage_checkpoint(run, change) -> None:
    path = run / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    (run / "summary.json").unlink()  # a run that was killed: resumable


@pytest.mark.parametrize("change", ["rng-type", "layer-names"])
def test_damaged_checkpoint_names_the_file_on_one_line(run_copy, change):
    if change == "rng-type":
        _damage_checkpoint(run_copy, lambda s: s["numpy_rng"].update(keys=5))
    else:
        _damage_checkpoint(
            run_copy, lambda s: s.update(model={f"x{k}": v for k, v in s["model"].items()})
        )
    res = CliRunner().invoke(app, ["run", "--resume", str(run_copy)])
    line = one_line(res)
    assert str(run_copy / "checkpoints" / "last.pt") in line and "delete it" in line, line
    assert not (run_copy / "summary.json").exists()  # nothing written


def test_protocol_4_pickle_checkpoint_no_warning(run_copy):
    (run_copy / "summary.json").unlink()
    with open(run_copy / "checkpoints" / "last.pt", "wb") as f:
        pickle.dump({"epoch": 1}, f, protocol=4)
    with warnings.catch_warnings(record=True) as seen:  # torch's UserWarning would reach stderr
        warnings.simplefilter("always")
        res = CliRunner().invoke(app, ["run", "--resume", str(run_copy)])
    assert "not a readable checkpoint" in one_line(res)
    assert not [w for w in seen if "pickle" in str(w.message)], [str(w.message) for w in seen]


def test_string_epochs_in_events_are_skipped(run_copy):
    lines = (run_copy / "events.jsonl").read_text().splitlines()
    bad = []
    for line in lines:
        e = json.loads(line)
        if e["event"] == "epoch_end":
            e["epoch"] = str(e["epoch"])
        bad.append(json.dumps(e))
    (run_copy / "events.jsonl").write_text("\n".join(bad) + "\n")
    res = CliRunner().invoke(app, ["show", str(run_copy), "curves", "--width", "80"])
    assert "Date" not in res.output
    assert res.exit_code in (0, 2) and "Traceback" not in res.output
    if res.exit_code == 2:
        one_line(res)


def test_unreadable_checkpoint_is_not_called_missing(run_copy):
    (run_copy / "model.safetensors").unlink()
    (run_copy / "checkpoints" / "last.pt").write_bytes(b"garbage")
    line = one_line(CliRunner().invoke(app, ["show", str(run_copy), "kernels", "--width", "80"]))
    assert "not a readable checkpoint" in line and "last.pt" in line, line


def test_corrupt_model_file_is_said_not_replaced_by_the_checkpoint(run_copy):
    (run_copy / "model.safetensors").write_bytes(b"\x00" * 20)
    line = one_line(CliRunner().invoke(app, ["show", str(run_copy), "kernels", "--width", "80"]))
    assert str(run_copy / "model.safetensors") in line and "delete it" in line, line


def test_cannot_write_is_said_once(run_copy, tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "m.ecsz"
    line = one_line(CliRunner().invoke(app, ["export", str(run_copy), "-o", str(out)]))
    assert line.count("cannot write") == 1, line
