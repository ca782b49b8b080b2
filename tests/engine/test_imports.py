"""The engine stays free of front-end libraries (DESIGN.md: ecs_core never imports them)."""

from __future__ import annotations

import json
import subprocess
import sys

FRONT_END = ("textual", "rich", "typer", "plotext", "textual_plotext")
LAZY = ("matplotlib", "onnx", "onnxruntime", "onnxscript", "tensorboard")
"""Figures, ONNX and TensorBoard: imported inside the functions that use them, never on import."""

PROBE = """
import json, pkgutil, importlib, sys
import ecs_core, ecs_core.pipeline
names = [m.name for m in pkgutil.walk_packages(ecs_core.__path__, "ecs_core.")]
for name in names:
    importlib.import_module(name)
loaded = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"modules": names, "loaded": loaded}))
"""


def test_importing_the_whole_engine_pulls_in_no_front_end_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "ecs_core.pipeline" in report["modules"] and "ecs_core.prune.mask" in report["modules"]
    assert "torch" in report["loaded"]  # the probe really imported the engine
    leaked = [name for name in FRONT_END + LAZY if name in report["loaded"]]
    assert leaked == [], f"ecs_core imports front-end libraries: {leaked}"
