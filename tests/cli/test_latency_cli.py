"""`ecs latency RUN...`: finished runs timed again, one after another; `--write` keeps the
run's own record; unfinished runs and non-runs refused in one line before anything is timed."""

from __future__ import annotations

import json
from pathlib import Path

from ecs_tui.cli import app


def _finished(runner, tiny, root: Path, *extra: str) -> Path:
    res = runner.invoke(app, ["run", *tiny, "--json", "--runs-dir", str(root), *extra])
    assert res.exit_code == 0, res.output
    return Path(json.loads(res.stdout.splitlines()[0])["run_dir"])


def test_a_channel_run_is_timed_again_and_the_first_record_kept(runner, tiny, tmp_path) -> None:
    run = _finished(runner, tiny, tmp_path, "--method", "snip", "--structure", "channel",
                    "--density", "0.25")  # fmt: skip
    first = json.loads((run / "summary.json").read_text())["latency"]
    res = runner.invoke(app, ["latency", str(run), "--write", "--json"])
    assert res.exit_code == 0, res.output
    new = json.loads(res.stdout.splitlines()[-1])["latency"]
    assert set(new["fp32_ms"]) == {"b1", "b64"} and new["int8_ms"] is None
    assert new["measured_again"] and new["fp32_speedup"]["b64"] > 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["latency"] == new and summary["latency_at_end"] == first
    again = runner.invoke(app, ["latency", str(run), "--write"])  # the first record stays first
    assert again.exit_code == 0 and "measured again" in again.output
    assert json.loads((run / "summary.json").read_text())["latency_at_end"] == first
    report = runner.invoke(app, ["report", str(run)])
    assert "measured again" in report.output


def test_the_smaller_model_is_what_is_timed(runner, tiny, tmp_path) -> None:
    """The fp32 model timed is the run's smaller one: fewer parameters than the dense model."""
    from ecs_tui.commands.quant import final_fp32

    run = _finished(runner, tiny, tmp_path, "--method", "magnitude", "--structure", "channel",
                    "--density", "0.25", "--warmup-epochs", "1")  # fmt: skip
    cfg, model, classes, channels, _ = final_fp32(run)
    from ecs_core.models import build_model

    dense = build_model(cfg.model, classes, channels, cfg.width)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in dense.parameters())


def test_unfinished_or_not_a_run_refused_before_any_timing(runner, tiny, tmp_path) -> None:
    run = _finished(runner, tiny, tmp_path, "--no-latency")
    before = (run / "summary.json").read_text()
    res = runner.invoke(app, ["latency", str(run), str(tmp_path / "nope"), "--write"])
    assert res.exit_code == 2 and "nope" in res.output and len(res.output.strip().splitlines()) == 1
    assert (run / "summary.json").read_text() == before  # nothing written for the good one
    summary = json.loads(before)
    summary["status"] = "stopped"
    (run / "summary.json").write_text(json.dumps(summary))
    res = runner.invoke(app, ["latency", str(run)])
    assert res.exit_code == 2 and "not a finished run (stopped)" in res.output
