"""The third reliability pass's small items, each one line and exit 2 (or a listing that says
what is damaged), nothing lost: a 300-character run directory name, mask values other than 0/1,
`ecs runs` on a config.json that is a folder and on a damaged summary.json, a .ecsz that lists a
tensor twice. (A checkpoint's impossible epoch: test_resume_config.py.)"""

from __future__ import annotations

import json
import lzma
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from ecs_core.quant import codec
from ecs_tui.cli import app

ECS = str(Path(sys.executable).parent / "ecs")
LONG = "r" * 300


@pytest.mark.parametrize(
    "args",
    [["run", "--run-dir", LONG, "--width", "0.125", "--epochs", "1", "--max-batches", "1"],
     ["show", LONG, "curves"], ["report", LONG], ["runs", LONG], ["export", LONG]],
    ids=["run", "show", "report", "runs", "export"],
)  # fmt: skip
def test_a_300_character_name_is_one_line(tmp_path, args):
    res = subprocess.run([ECS, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "longer than the file system allows" in lines[0], res.stderr
    assert list(tmp_path.iterdir()) == []


def _seven(run: Path) -> None:
    masks = load_file(run / "masks.safetensors")
    name = next(iter(masks))
    masks[name].view(-1)[0] = 7
    save_file(masks, run / "masks.safetensors")


@pytest.mark.parametrize("command", [["show", "{run}", "sparsity"], ["export", "{run}"]])
def test_a_mask_value_of_7_is_damage_not_kept(run_copy, command):
    _seven(run_copy)
    res = CliRunner().invoke(app, [a.format(run=run_copy) for a in command])
    assert res.exit_code == 2, (res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "mask value 7" in lines[0], res.stderr


def test_a_checkpoint_mask_value_of_7_is_refused_on_resume(run_copy):
    (run_copy / "summary.json").unlink()
    path = run_copy / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    mask = {k: v.to(torch.uint8) for k, v in state["mask"].items()}
    next(iter(mask.values())).view(-1)[0] = 7
    torch.save({**state, "mask": mask}, path)
    res = CliRunner().invoke(app, ["run", "--resume", str(run_copy)])
    assert res.exit_code == 2 and "mask value 7" in res.stderr, (res.output, res.exception)


def test_runs_lists_a_config_json_that_is_a_folder(run_copy):
    (run_copy / "config.json").unlink()
    (run_copy / "config.json").mkdir()
    res = CliRunner().invoke(app, ["runs", str(run_copy.parent)])
    assert res.exit_code == 0, (res.output, res.exception)
    assert run_copy.name in res.stdout and "unreadable" in res.stdout, res.stdout
    assert "config.json is damaged" in res.stderr, res.stderr


def test_runs_calls_a_damaged_summary_damaged_not_died(run_copy):
    (run_copy / ".lock").touch()  # it took the lock once: without a summary it would be died
    (run_copy / "summary.json").write_text("{not json")
    res = CliRunner().invoke(app, ["runs", str(run_copy.parent)])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "died" not in res.stdout and "unreadable" in res.stdout, res.stdout
    assert "summary.json is damaged" in res.stderr, res.stderr


def test_a_ecsz_listing_a_tensor_twice_is_refused(run_copy, tmp_path):
    manifest, blob = codec.read_manifest((run_copy / "model.ecsz").read_bytes())
    manifest["tensors"].append(manifest["tensors"][0])
    head = json.dumps(manifest).encode()
    raw = struct.pack("<I", len(head)) + head + bytes(blob)
    body = lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE, filters=codec.FILTERS)
    header = codec.HEADER.pack(codec.MAGIC, codec.VERSION, codec.LZMA, len(raw), len(body),
                               zlib.crc32(body))  # fmt: skip
    path = tmp_path / "twice.ecsz"
    path.write_bytes(header + body)
    res = CliRunner().invoke(app, ["eval", str(path)])
    assert res.exit_code == 2, (res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    name = manifest["tensors"][0]["name"]
    assert len(lines) == 1 and f"lists tensor {name} twice" in lines[0], res.stderr
