"""`ecs run --nproc N` behind the scenes: `launch_ddp` starts torchrun with the run's options."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_core.config import RunConfig
from ecs_core.store import RunStore
from ecs_tui.commands.execute import launch_ddp

pytestmark = pytest.mark.slow


def test_launch_ddp_runs_two_processes_that_write_one_run(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two gloo processes, one run directory, one copy of the output (rank 0's)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = RunConfig(width=0.125, method="snip", epochs=1, max_batches=2, batch_size=32,
                       quantize=False, device="cpu", runs_dir=str(tmp_path)).validate()  # fmt: skip
    assert launch_ddp(config, 2, None, False) == 0
    out = capfd.readouterr().out
    assert out.count("finished: test accuracy") == 1, out
    (run_dir,) = tmp_path.iterdir()
    store = RunStore(run_dir)
    assert store.read_summary()["status"] == "finished"
    assert store.read_config() == config
    started = [e for e in store.read_events() if e.kind == "run_started"]
    assert len(started) == 1 and started[0].config["batch_size"] == 32
