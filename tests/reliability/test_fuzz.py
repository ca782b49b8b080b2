"""Fuzz: `ecs run` / `show` / `report` options, and damaged files in a run directory.

Whatever is typed or broken: the exit code is 0, 1, 2 or 130, nothing escapes as a traceback,
and a failure is one `error:` line. Derandomized (the same cases on every run), in-process,
under a minute in all.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import ecs_tui.commands.run as run_cmd
from ecs_tui.cli import app

FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def check(res) -> None:
    """The contract every command keeps, whatever its input."""
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 1, 2, 130), (res.exit_code, res.output)
    assert "Traceback" not in res.output
    if res.exit_code != 0:
        # ours: "error: ..."; the option parser's: "Usage: ..." and one "Error: ..." line
        errors = [line for line in res.stderr.splitlines() if line.lower().startswith("error: ")]
        assert len(errors) == 1, res.stderr


_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "-1", "1e308", "1e-308", "nan", "inf", "-inf", "3.4e39", "2**64",
                     str(2**64 - 1), str(2**63), "0x10", "", " ", "1,2", "1e400"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)  # fmt: skip
_WORDS = st.one_of(
    st.sampled_from(["VGG16", "resnet50", "cifar10", "layer", "union", "none", "cpu", "cuda",
                     "bf16", "True", "foo"]),
    st.text(max_size=8),
)  # fmt: skip
_RUN_OPTS = {
    "--seed": _NUMBERS, "--lr": _NUMBERS, "--epochs": _NUMBERS, "--density": _NUMBERS,
    "--width": _NUMBERS, "--batch-size": _NUMBERS, "--weight-decay": _NUMBERS,
    "--momentum": _NUMBERS, "--gamma": _NUMBERS, "--bits": _NUMBERS, "--compression": _NUMBERS,
    "--finetune-epochs": _NUMBERS, "--calib-batches": _NUMBERS, "--checkpoint-every": _NUMBERS,
    "--model": _WORDS, "--dataset": _WORDS, "--method": _WORDS, "--scope": _WORDS,
    "--budget": _WORDS, "--device": _WORDS, "--precision": _WORDS, "--prunetype": _WORDS,
    "--nproc": _NUMBERS,
}  # fmt: skip
_RUN_PAIRS = st.lists(
    st.sampled_from(sorted(_RUN_OPTS)).flatmap(lambda o: st.tuples(st.just(o), _RUN_OPTS[o])),
    min_size=1, max_size=4,
)  # fmt: skip


@pytest.fixture
def no_execute(monkeypatch):
    """Parsing, validation and the run directory checks only: no training."""
    monkeypatch.setattr(run_cmd, "execute", lambda config, store, as_json: 0)


@FUZZ
@given(pairs=_RUN_PAIRS, where=st.sampled_from(["runs-dir", "run-dir", "resume"]))
def test_fuzz_run_options(no_execute, finished_run, pairs, where):
    with tempfile.TemporaryDirectory() as tmp:
        target = {"runs-dir": ["--runs-dir", tmp], "run-dir": ["--run-dir", f"{tmp}/r"],
                  "resume": ["--resume", str(finished_run)]}[where]  # fmt: skip
        res = CliRunner().invoke(app, ["run", *target, *[x for p in pairs for x in p]])
        check(res)


_SHOW_OPTS = {
    "--layer": st.one_of(st.sampled_from(["1", "0", "99", "features.0", "classifier.3.weight",
                                          "features.1", "x"]), st.text(max_size=5)),
    "--image": _NUMBERS, "--page": _NUMBERS, "--width": _NUMBERS, "--height": _NUMBERS,
    "--metric": st.sampled_from(["all", "loss", "acc", "lr", "density", "x"]),
}  # fmt: skip


@FUZZ
@given(
    view=st.sampled_from(["sparsity", "curves", "clusters", "kernels", "activations", "x"]),
    pairs=st.lists(st.sampled_from(sorted(_SHOW_OPTS)).flatmap(
        lambda o: st.tuples(st.just(o), _SHOW_OPTS[o])), max_size=3),
    as_json=st.booleans(),
)  # fmt: skip
def test_fuzz_show_options(finished_run, view, pairs, as_json):
    args = ["show", str(finished_run), view, *[x for p in pairs for x in p]]
    res = CliRunner().invoke(app, [*args, "--json"] if as_json else args)
    check(res)


FILES = ["config.json", "summary.json", "events.jsonl", "model.safetensors", "masks.safetensors",
         "quantized.safetensors", "model.ecsz", "checkpoints/last.pt"]  # fmt: skip


def damage(path: Path, kind: str, data: bytes) -> None:
    raw = path.read_bytes()
    if kind == "delete":
        path.unlink()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncate":
        path.write_bytes(raw[: len(raw) // 3])
    elif kind == "garbage":
        path.write_bytes(data)
    elif kind == "flip":
        i = int.from_bytes(data[:4].ljust(4, b"\0"), "little") % max(1, len(raw))
        path.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :] if raw else data)
    elif kind == "nested":
        path.write_text("[" * 50_000 + "]" * 50_000)
    elif kind == "utf8":
        path.write_bytes(raw[:10] + b"\xff\xfe\n" + raw[10:])
    elif kind == "json-types":  # valid JSON, wrong types everywhere
        wrong = {"status": 3, "layers": "x", "quant": [1], "epoch": "3", "model": 1,
                 "width": "wide", "event": "epoch_end"}  # fmt: skip
        path.write_text(json.dumps(wrong))


COMMANDS = [["report"], ["show", "sparsity"], ["show", "curves"], ["show", "clusters"],
            ["show", "kernels"], ["runs"], ["compare"], ["export"], ["eval"],
            ["run", "--resume"]]  # fmt: skip


@settings(FUZZ, max_examples=60)
@given(
    name=st.sampled_from(FILES),
    kind=st.sampled_from(["delete", "empty", "truncate", "garbage", "flip", "nested", "utf8",
                          "json-types"]),
    data=st.binary(max_size=64),
    command=st.sampled_from(COMMANDS),
)  # fmt: skip
def test_fuzz_damaged_run_files(no_execute, finished_run, name, kind, data, command):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "runs" / finished_run.name
        shutil.copytree(finished_run, run, ignore=shutil.ignore_patterns(".lock"))
        damage(run / name, kind, data)
        if command[0] == "show":
            args = ["show", str(run), command[1], "--width", "80", "--height", "24"]
        elif command[0] in ("runs", "compare"):
            args = [command[0], str(run.parent)]
        elif command[0] == "export":
            args = ["export", str(run), "-o", f"{tmp}/out.ecsz"]
        elif command[0] == "eval":
            args = ["eval", str(run / "model.ecsz"), "--no-download"]
        else:
            args = [*command, str(run)]
        check(CliRunner().invoke(app, args))
