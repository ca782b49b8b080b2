"""TensorBoard logs, read back with tensorboard's own event reader: `ecs run --tensorboard`
(live, from the event stream), `ecs tensorboard RUN --out`, and one sub-folder per sweep cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ecs_core.config import RunConfig
from ecs_core.sweep import Grid, make_cells
from ecs_core.tboard import SCALARS
from ecs_tui.cli import app
from ecs_tui.commands.argv import config_to_args

TAGS = [tag for _, tag in SCALARS]


def read(logdir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0,
                                                       "tensors": 0})  # fmt: skip
    acc.Reload()
    return acc


def test_live_run_logs_every_epochs_scalars_density_table_and_histograms(tmp_path):
    from ecs_core.pipeline import run

    logdir = tmp_path / "tb"
    cfg = RunConfig(model="vgg16", dataset="digits", width=0.125, method="snip", density=0.2,
                    epochs=2, max_batches=2, batch_size=32, calib_batches=1, device="cpu",
                    runs_dir=str(tmp_path / "runs"), tensorboard=str(logdir))  # fmt: skip
    events = list(run(cfg))
    assert events[-1].kind == "run_finished"
    acc = read(logdir)
    epochs = [e for e in events if e.kind == "epoch_end"]
    for tag in TAGS:
        steps = [s.step for s in acc.Scalars(tag)]
        assert steps == [1, 2], tag
    test_acc = [s.value for s in acc.Scalars("accuracy/test")]
    assert test_acc == pytest.approx([e.test_acc for e in epochs])
    assert "pruning/layers/text_summary" in acc.Tags()["tensors"]
    table = acc.Tensors("pruning/layers/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| features.0 |" in table and "20.00%" in table
    hists = acc.Tags()["histograms"]
    assert "weights_before_sharing/features.0" in hists
    assert "weights_after_sharing/classifier.3" in hists
    after = acc.Histograms("weights_after_sharing/features.3")[0].histogram_value
    assert after.num == pytest.approx(events[-1].summary["layers"][1]["kept"])  # non-zeros only


def test_ecs_tensorboard_writes_the_same_from_an_existing_run(runner, known_run, tmp_path):
    out = tmp_path / "tb"
    result = runner.invoke(app, ["tensorboard", str(known_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "300 epoch(s)" in result.output
    acc = read(out)
    steps = [s.step for s in acc.Scalars("accuracy/test")]
    assert steps == list(range(1, 301))
    assert acc.Scalars("loss/train")[9].value == pytest.approx(1 / 10)
    assert {"weights_before_sharing/features.7", "weights_after_sharing/features.7"} <= set(
        acc.Tags()["histograms"]
    )


def test_a_folder_of_runs_gets_one_sub_folder_each(runner, make_known_run, tmp_path):
    a, b = make_known_run(tmp_path / "runs" / "a"), make_known_run(tmp_path / "runs" / "b")
    out = tmp_path / "tb"
    result = runner.invoke(app, ["tensorboard", str(tmp_path / "runs"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for run in (a, b):
        assert len(read(out / run.relative_to(tmp_path / "runs")).Scalars("lr")) == 300
    bad = runner.invoke(app, ["tensorboard", str(tmp_path / "nowhere"), "--out", str(out)])
    assert bad.exit_code == 2 and bad.output.startswith("error: ")


def test_a_sweep_gives_each_cell_its_own_log_folder():
    base = RunConfig(tensorboard="tb").validate()
    cells = make_cells(Grid(methods=("snip", "ecs"), seeds=(0, 1)), base, "runs", "s")
    folders = [c.config.tensorboard for c in cells]
    assert folders == [str(Path("tb") / c.name) for c in cells] and len(set(folders)) == 4
    assert "--tensorboard" in config_to_args(cells[0].config)
    assert cells[0].config == RunConfig(**{**cells[0].config.to_dict(), "tensorboard": ""})


def test_rigl_logs_the_mask_turnover_at_every_update(tmp_path):
    from ecs_core.pipeline import run

    logdir = tmp_path / "tb"
    cfg = RunConfig(model="vgg16", dataset="digits", width=0.125, method="rigl", density=0.1,
                    epochs=2, max_batches=4, batch_size=32, dst_interval=2, quantize=False,
                    runs_dir=str(tmp_path / "runs"), tensorboard=str(logdir))  # fmt: skip
    events = list(run(cfg))
    updates = [e for e in events if e.kind == "mask_updated"]
    assert [e.step for e in updates] == [2, 4]  # 8 steps: none from step 6 on
    acc = read(logdir)
    turnover = acc.Scalars("mask/turnover")
    assert [s.step for s in turnover] == [2, 4]
    assert [s.value for s in turnover] == pytest.approx([e.moved / e.kept for e in updates])
    assert events[-1].summary["mask_moved"] == sum(e.moved for e in updates) > 0
