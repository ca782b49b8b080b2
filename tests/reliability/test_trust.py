"""Opening a colleague's run never runs their code: a `module:factory` model read from a file is
imported only with `ECS_TRUST_MODEL_CODE` naming its module (`ecs_core.trust`).

The hostile module writes a marker file when imported. Every command that rebuilds a model from
a run's files (eval, show activations, export in both formats, run --resume, a sweep's grid
file) is run as a user would: the `ecs` script, standing in the folder that holds the module.
Without the opt-in: one line naming the module and how to allow it, exit 2, no marker; with it
(and the module on PYTHONPATH): the marker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ecs_core.trust import ENV

ECS = str(Path(sys.executable).parent / "ecs")
SMALL = ["--dataset", "digits", "--width", "0.125", "--max-batches", "2", "--batch-size", "32",
         "--method", "snip", "--density", "0.3"]  # fmt: skip
EVIL = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from torch import nn

    Path(os.environ["EVIL_MARKER"]).write_text("imported")


    def factory(num_classes, in_channels, width):
        c = max(1, int(round(16 * width)))
        return nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Linear(c, num_classes),
        )
    """
)


class Lab:
    """A folder holding evilmod.py, a finished run and a stopped run of `evilmod:factory`."""

    def __init__(self, root: Path) -> None:
        self.root, self.marker = root, root / "MARKER"
        (root / "evilmod.py").write_text(EVIL)
        runs = root / "runs"
        make = ["run", "--model", "evilmod:factory", *SMALL, "--runs-dir", str(runs), "--json"]
        done = self.ecs(*make, "--epochs", "1", trust=False)  # typed here: the user's own
        assert done.returncode == 0, done.stderr
        self.finished = Path(json.loads(done.stdout.splitlines()[0])["run_dir"])
        script = (
            "import sys, threading\n"
            "from ecs_core.config import RunConfig\n"
            "from ecs_core.pipeline import run\n"
            "stop = threading.Event()\n"
            "cfg = RunConfig(model='evilmod:factory', dataset='digits', width=0.125,\n"
            "    max_batches=2, batch_size=32, method='snip', density=0.3, epochs=2,\n"
            "    quantize=False, device='cpu', runs_dir=sys.argv[1] + '/stopped')\n"
            "for e in run(cfg, stop=stop):\n"
            "    if e.kind == 'epoch_end': stop.set()\n"
        )
        made = subprocess.run(
            [sys.executable, "-c", script, str(root)],
            cwd=root, env=self.env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        (self.stopped,) = (root / "stopped").iterdir()
        self.marker.unlink()

    def env(self, trust: bool = False, pythonpath: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in (ENV, "PYTHONPATH")}
        env["EVIL_MARKER"] = str(self.marker)
        if trust:
            env[ENV] = "evilmod"
        if pythonpath:
            env["PYTHONPATH"] = str(self.root)
        return env

    def ecs(self, *args: str, trust: bool, pythonpath: bool = True) -> subprocess.CompletedProcess:
        self.marker.unlink(missing_ok=True)
        return subprocess.run([ECS, *args], cwd=self.root, env=self.env(trust, pythonpath),
                              capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    return Lab(tmp_path_factory.mktemp("trust"))


COMMANDS = {
    "eval": lambda lab: ["eval", str(lab.finished / "model.ecsz")],
    "show activations": lambda lab: ["show", str(lab.finished), "activations"],
    "export ecsz": lambda lab: ["export", str(lab.finished), "-o", str(lab.root / "x.ecsz")],
    "export onnx": lambda lab: [
        "export",
        str(lab.finished),
        "--format",
        "onnx",
        "-o",
        str(lab.root / "x.onnx"),
    ],  # fmt: skip
    "run --resume": lambda lab: ["run", "--resume", str(lab.stopped)],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_model_named_by_a_file_is_not_imported_without_the_opt_in(lab, command):
    res = lab.ecs(*COMMANDS[command](lab), trust=False)
    assert res.returncode == 2, res.stdout + res.stderr
    assert not lab.marker.exists(), f"{command} imported evilmod"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "evilmod" in lines[0] and f"{ENV}=evilmod" in lines[0]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_opt_in_imports_it(lab, command):
    res = lab.ecs(*COMMANDS[command](lab), trust=True)
    assert lab.marker.exists(), res.stdout + res.stderr
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_working_directory_is_not_searched_for_a_model_named_by_a_file(lab):
    """Trusted by name, the module is looked up on the import path, not beside you."""
    res = lab.ecs(*COMMANDS["eval"](lab), trust=True, pythonpath=False)
    assert res.returncode == 2 and not lab.marker.exists(), res.stderr
    assert "PYTHONPATH" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_views_that_need_no_model_still_work(lab):
    for view in ("curves", "sparsity", "clusters"):
        res = lab.ecs("show", str(lab.finished), view, trust=False)
        assert res.returncode == 0, res.stderr
    assert lab.ecs("report", str(lab.finished), trust=False).returncode == 0
    assert lab.ecs("runs", str(lab.root / "runs"), trust=False).returncode == 0
    assert not lab.marker.exists()


def test_a_sweep_grid_file_naming_a_module_needs_the_opt_in(lab, tmp_path):
    grid = tmp_path / "hostile.toml"
    grid.write_text('[grid]\nmodels = ["evilmod:factory"]\nmethods = ["snip"]\n'
                    "densities = [0.3]\n")  # fmt: skip
    args = ["sweep", "--grid", str(grid), "--runs-dir", str(tmp_path / "runs"), "--width", "0.125",
            "--epochs", "1", "--max-batches", "1", "--no-quantize", "--gpus", "none"]  # fmt: skip
    res = lab.ecs(*args, trust=False)
    assert res.returncode == 2 and not lab.marker.exists(), res.stdout + res.stderr
    assert f"{ENV}=evilmod" in res.stderr and not (tmp_path / "runs").exists()
    res = lab.ecs(*args, trust=True)
    assert res.returncode == 0 and lab.marker.exists(), res.stdout + res.stderr


def test_a_standard_library_module_named_by_a_manifest_is_not_imported(lab, tmp_path):
    """`this` prints on import, as `antigravity` opens a browser: neither may be imported."""
    from torch import nn

    from ecs_core.quant.codec import encode

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 10))
    path = tmp_path / "stdlib.ecsz"
    path.write_bytes(encode(net, {"model": "this:s", "num_classes": 10, "in_channels": 1,
                                  "width": 1.0, "dataset": "digits"}))  # fmt: skip
    probe = (
        "import sys\n"
        "from ecs_tui.cli import app\n"
        "try:\n"
        "    app(['eval', sys.argv[1]])\n"
        "except SystemExit as exc:\n"
        "    print('EXIT', exc.code)\n"
        "print('IMPORTED' if 'this' in sys.modules else 'CLEAN')\n"
    )
    res = subprocess.run([sys.executable, "-c", probe, str(path)], env=lab.env(),
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.stdout.strip().splitlines()[-2:] == ["EXIT 2", "CLEAN"], res.stdout + res.stderr
    assert f"{ENV}=this" in res.stderr


def test_trust_names_modules_and_a_package_covers_its_submodules(monkeypatch):
    """In-process rules (no import happens in `check`): typed names are the user's; a file's
    needs its module (or a package above it) in the variable; `antigravity` is not `anti`."""
    from ecs_core import trust

    monkeypatch.setattr(trust, "_own", set())
    monkeypatch.setattr(trust, "_allowed", set())
    monkeypatch.setenv(ENV, "mypkg, colleague.nets")
    trust.check("vgg16")
    trust.check("mypkg.nets:small")
    trust.check("colleague.nets:big")
    for name in ("colleague:net", "mypkgx:net", "antigravity:geohash", "this:s"):
        with pytest.raises(trust.UntrustedModel, match=f"{ENV}={trust.module_of(name)}"):
            trust.check(name, "x.ecsz")
    trust.own("this:s")
    trust.check("this:s")
    monkeypatch.delenv(ENV)
    with pytest.raises(trust.UntrustedModel):
        trust.check("mypkg.nets:small")
    assert trust.child_env() == {ENV: "this"}
