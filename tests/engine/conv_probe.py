"""Probe conv shapes for native heap corruption: each shape forward and backward in its own process.

`shapes(widths)` lists every distinct convolution the registered models run on 32x32 inputs
(1 or 3 input channels), as the layer class and its arguments. `probe(shapes, batches)` runs
this file in a child under glibc's malloc checks (two threads: the oneDNN bug needs them); the
child forks one process per shape from a server that has imported torch, so a shape costs no
interpreter start. Each shape, at every batch size, in contiguous and channels-last tensors:
the layer's forward and backward as training calls it (input and weight gradients) and its
`no_grad` forward, each compared with the plain contiguous `conv2d` (the layer's own stride and
padding). The result is one line per shape: `ok`, the worst relative error, or how it died.

Run by hand: `python tests/engine/conv_probe.py '[["StridedPointwise", 8, 16, 1, 2, 0, 32]]'`.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys

# (layer class, c_in, c_out, kernel, stride, padding, input height = width)
Shape = tuple[str, int, int, int, int, int, int]
BATCHES = (1, 3, 16, 29, 128)  # odd and even; 29 and 15 are digits' and the matrix's last batches
TOLERANCE = 1e-4  # relative L2 error against the contiguous conv2d (float32 reorders sums)
MALLOC_DEBUG = ("/lib*/libc_malloc_debug.so.0", "/usr/lib*/libc_malloc_debug.so.0",
                "/lib/*-linux-gnu/libc_malloc_debug.so.0",
                "/usr/lib/*-linux-gnu/libc_malloc_debug.so.0")  # fmt: skip


def shapes(widths: tuple[float, ...], in_channels: tuple[int, ...] = (1, 3)) -> list[Shape]:
    """Every distinct conv of every registered model at these widths, sorted."""
    import torch
    from torch import nn

    from ecs_core.models import build_model
    from ecs_core.registry import MODELS

    seen: set[Shape] = set()

    def record(m: nn.Conv2d, args: tuple, _out: torch.Tensor) -> None:
        k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
        seen.add((type(m).__name__, m.in_channels, m.out_channels, k, s, p, args[0].shape[-1]))

    for name in sorted(MODELS):
        for width in widths:
            for c in in_channels:
                model = build_model(name, 10, c, width).eval()
                for m in model.modules():
                    if isinstance(m, nn.Conv2d):
                        assert m.kernel_size[0] == m.kernel_size[1] and m.groups == 1, m
                        m.register_forward_hook(record)
                with torch.no_grad():
                    model(torch.zeros(1, c, 32, 32))
    return sorted(seen)


def malloc_checking_env(threads: int = 2) -> dict[str, str]:
    """This environment with glibc's malloc checks on (glibc >= 2.34 keeps them in
    libc_malloc_debug.so, which must be preloaded; older ones read MALLOC_CHECK_)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MALLOC_CHECK_": "3",
           "GLIBC_TUNABLES": "glibc.malloc.check=3"}  # fmt: skip
    found = sorted(p for pattern in MALLOC_DEBUG for p in glob.glob(pattern))
    if found:
        env["LD_PRELOAD"] = " ".join(filter(None, [env.get("LD_PRELOAD"), found[0]]))
    return env


def probe(
    shape_list: list[Shape], batches: tuple[int, ...] = BATCHES, timeout: float = 3600
) -> dict[Shape, str]:
    """`{shape: "ok" | what went wrong}`, each shape probed in its own process."""
    arg = json.dumps([list(s) for s in shape_list])
    cmd = [sys.executable, __file__, arg, json.dumps(list(batches))]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=malloc_checking_env(), timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the probe itself failed (exit {proc.returncode}): {proc.stderr}")
    got = {tuple(s): verdict for s, verdict in json.loads(proc.stdout.splitlines()[-1])}
    return {s: got.get(tuple(s), "missing") for s in shape_list}


def _layer(shape: Shape):
    from torch import nn

    from ecs_core.models.pointwise import StridedPointwise

    cls, c_in, c_out, k, s, p, _ = shape
    if cls == "StridedPointwise":
        assert k == 1 and p == 0, shape
        return StridedPointwise(c_in, c_out, s)
    assert cls == "Conv2d", f"no probe for layer class {cls}"
    return nn.Conv2d(c_in, c_out, k, s, p, bias=False)


def _relative_error(got, ref) -> float:
    got, ref = got.detach().double(), ref.detach().double()
    return float((got - ref).norm() / ref.norm().clamp_min(1e-30))


def _probe_one(shape: Shape, batches: list[int]) -> None:
    """In a forked child: exit 0 if every check held, 1 with the worst error on stderr."""
    import torch

    torch.manual_seed(0)
    layer, (_, c_in, _, _, s, p, hw) = _layer(shape), shape
    worst = 0.0
    for n in batches:
        x = torch.randn(n, c_in, hw, hw)
        x_ref = x.clone().requires_grad_()
        w_ref = layer.weight.detach().clone(memory_format=torch.contiguous_format).requires_grad_()
        out_ref = torch.nn.functional.conv2d(x_ref, w_ref, stride=s, padding=p)
        upstream = torch.randn_like(out_ref)
        (out_ref * upstream).sum().backward()
        for fmt in (torch.contiguous_format, torch.channels_last):
            layer.to(memory_format=fmt).zero_grad(set_to_none=True)
            xi = x.clone(memory_format=fmt).requires_grad_()
            out = layer(xi)
            (out * upstream.contiguous(memory_format=fmt)).sum().backward()
            with torch.no_grad():
                evaluated = layer(x.contiguous(memory_format=fmt))
            for got, ref in ((out, out_ref), (xi.grad, x_ref.grad), (layer.weight.grad, w_ref.grad),
                             (evaluated, out_ref)):  # fmt: skip
                worst = max(worst, _relative_error(got, ref))
    if worst > TOLERANCE:
        sys.stderr.write(f"relative error {worst:.2e} > {TOLERANCE:.0e}\n")
        os._exit(1)
    os._exit(0)


def _child_main(shape_list: list[Shape], batches: list[int]) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "ecs_core.models.pointwise"])
    results = []
    for shape in shape_list:
        proc = ctx.Process(target=_probe_one, args=(tuple(shape), batches))
        proc.start()
        proc.join()
        code = proc.exitcode
        if code == 0:
            verdict = "ok"
        elif code == 1:
            verdict = "gradients differ from the contiguous conv2d"
        elif code is not None and code < 0:
            verdict = f"killed by {signal.Signals(-code).name}"
        else:
            verdict = f"exit {code}"
        results.append([shape, verdict])
    print(json.dumps(results))


if __name__ == "__main__":
    _child_main(json.loads(sys.argv[1]), json.loads(sys.argv[2]) if len(sys.argv) > 2 else BATCHES)
