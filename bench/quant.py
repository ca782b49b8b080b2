"""Quantization benchmarks: weight sharing vs scikit-learn, int8 vs fp32, file size vs dense.

All on VGG16 at full width (CIFAR shape: 3 channels, 10 classes) with a 5% SNIP mask scored
on digits images (repeated to 3 channels), so no dataset download is needed. Run alone with
`python -m bench.quant [--quick]`; the bench harness calls `rows()`.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

BITS = 5
DENSITY = 0.05
BATCH = 64


def _row(what: str, reference: str, ref_s: float | None, ours_s: float | None,
         ratio: float | None, goal: str, met: bool | None, note: str,
         check_failed: bool = False) -> dict[str, Any]:  # fmt: skip
    """One row in the harness's format; `check_failed` marks a broken guarantee, not a slow one."""
    out = {
        "what": what,
        "reference": reference,
        "reference_s": ref_s,
        "ours_s": ours_s,
        "ratio": ratio,
        "goal": goal,
        "met": None if met is None else bool(met),
        "note": note,
    }
    if check_failed:
        out["check_failed"] = True
    return out


def pruned_vgg16(seed: int = 0) -> tuple[torch.nn.Module, dict[str, torch.Tensor], torch.Tensor]:
    """(VGG16 with a 5% global SNIP mask applied, the mask, 256 normalised 3-channel images)."""
    return pruned_model("vgg16", seed)


def pruned_model(
    name: str, seed: int = 0
) -> tuple[torch.nn.Module, dict[str, torch.Tensor], torch.Tensor]:
    """(full-width `name` with a 5% global SNIP mask applied, the mask, 256 images)."""
    from ecs_core.models import build_model

    state, mask, images = _pruned(seed, name)
    model = build_model(name, 10, 3, 1.0)
    model.load_state_dict(state)
    return model.eval(), mask, images


@functools.cache
def _pruned(
    seed: int, name: str = "vgg16"
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Scored once per process: SNIP on a full-width model takes seconds on a CPU."""
    from ecs_core.data import load_dataset, make_batches
    from ecs_core.models import build_model, prunable_weights
    from ecs_core.prune import prune

    torch.manual_seed(seed)
    d = load_dataset("digits", "./data", download=False)
    x = d.train_x[:256].repeat(1, 3, 1, 1)
    mean, std = d.mean * 3, d.std * 3
    batches = make_batches(x, d.train_y[:256], mean, std, BATCH, False, False, torch.device("cpu"))
    model = build_model(name, 10, 3, 1.0)
    if name != "vgg16":  # batch-norm statistics of real images (a ResNet at init has none)
        model.train()
        with torch.no_grad():
            for xb, _ in batches.epoch():
                model(xb)
    mask = prune(model, "snip", DENSITY, batches, seed=seed).mask
    with torch.no_grad():
        for pname, w in prunable_weights(model).items():
            w.mul_(mask[pname])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return state, mask, batches.normalise(x)


def sharing_rows(quick: bool) -> list[dict[str, Any]]:
    """Our share_weights vs sklearn KMeans (same linear init, n_init=1) on every layer."""
    from sklearn.cluster import KMeans

    from ecs_core.models import prunable_weights
    from ecs_core.quant.kmeans import linear_init, share_weights

    model, mask, _ = pruned_vgg16()
    layers = {
        k: w.detach()[mask[k]].numpy().astype(np.float64)
        for k, w in prunable_weights(model).items()
    }
    k = 2**BITS
    t = time.perf_counter()
    sk_sse = 0.0
    for x in layers.values():
        init = linear_init(x, k).reshape(-1, 1)
        km = KMeans(k, init=init, n_init=1, algorithm="lloyd").fit(x.reshape(-1, 1))
        sk_sse += float(np.sum((x - km.cluster_centers_.ravel()[km.labels_]) ** 2))
    sk_s = time.perf_counter() - t
    report = share_weights(model, BITS, mask)
    ours_s, ours_sse = report.seconds, report.sse
    n = sum(len(x) for x in layers.values())
    rows = [
        _row(f"weight sharing, VGG16 {len(layers)} layers, {n:,} non-zero weights, {k} clusters",
             "sklearn KMeans (same init, n_init=1)", sk_s, ours_s, sk_s / ours_s, ">= 10x faster",
             sk_s / ours_s >= 10, "ours includes reading and writing the weights"),
        _row("weight sharing SSE vs sklearn", "sklearn KMeans SSE", None, None, ours_sse / sk_sse,
             "<= 1.00", ours_sse <= sk_sse * (1 + 1e-9),
             f"ours {ours_sse:.6g}, sklearn {sk_sse:.6g}",
             check_failed=ours_sse > sk_sse * (1 + 1e-9)),
    ]  # fmt: skip
    rows.append(_optimum_row(layers, report, quick))
    return rows


def _optimum_row(layers: dict[str, np.ndarray], report: Any, quick: bool) -> dict[str, Any]:
    """SSE against the optimal 1-D clustering (kmeans1d's DP), all layers or a subsample."""
    from ecs_core.quant.kmeans import kmeans_1d, linear_init

    try:
        import kmeans1d
    except ImportError:
        return _row("weight sharing SSE vs optimum", "kmeans1d (optimal DP)", None, None,
                    None, "<= 1.02", None, "pip install kmeans1d to measure")  # fmt: skip
    k = 2**BITS
    rng = np.random.default_rng(0)
    ours = opt = ref_s = our_s = 0.0
    for x in layers.values():
        if quick and len(x) > 20_000:
            x = rng.choice(x, 20_000, replace=False)
        t = time.perf_counter()
        labels, centroids = kmeans1d.cluster(x, k)
        ref_s += time.perf_counter() - t
        opt += float(np.sum((x - np.asarray(centroids)[labels]) ** 2))
        t = time.perf_counter()
        ours += kmeans_1d(x, linear_init(x, k)).sse
        our_s += time.perf_counter() - t
    scope = "layers subsampled to 20k values" if quick else "all layers, all values"
    lloyd_only = sum(kmeans_1d(x, linear_init(x, k), dp=False).sse for x in layers.values())
    note = (f"{scope}; Lloyd from linear init alone (sklearn's result): {lloyd_only / opt:.4f}x"
            if not quick else scope)  # fmt: skip
    return _row("weight sharing SSE vs optimum", "kmeans1d (optimal DP)", ref_s, our_s,
                ours / opt, "<= 1.02", ours <= opt * 1.02, note)  # fmt: skip


def _interleaved(fns: dict[str, Callable[[], Any]], rounds: int, reps: int) -> dict[str, float]:
    """Median seconds per call of each fn, timed in alternating rounds (a busy machine drifts)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            for _ in range(reps):
                fn()
            times[name].append((time.perf_counter() - t) / reps)
    return {k: statistics.median(v) for k, v in times.items()}


INT8_MODELS = ("vgg16", "resnet34", "resnet50")


def int8_rows(quick: bool) -> list[dict[str, Any]]:
    """int8 CPU inference (torchao PT2E, x86/oneDNN) vs fp32 eager, batch 64, full width."""
    from ecs_core.quant.int8 import Int8Unavailable, check_available

    try:
        check_available()
    except Int8Unavailable as exc:
        return [_row("int8 inference batch 64", "fp32 eager", None, None, None,
                     ">= 4x throughput", None, f"skipped: {exc}")]  # fmt: skip
    rows = []
    for name in INT8_MODELS:
        rows += _int8_model_rows(name, quick, compiled=name == "vgg16" and not quick)
    return rows


def _int8_model_rows(name: str, quick: bool, compiled: bool) -> list[dict[str, Any]]:
    from ecs_core.quant.int8 import build_int8
    from ecs_core.quant.kmeans import share_weights

    model, mask, images = pruned_model(name)
    share_weights(model, BITS, mask)
    x = images[:BATCH]
    calib = list(images.split(BATCH))
    variants = {"lowered to oneDNN (no compiler)": False}
    if compiled:
        variants["torch.compile + freezing"] = True
    built, build_s = {}, {}
    for variant, c in variants.items():
        t0 = time.perf_counter()
        built[variant] = build_int8(model, calib, BATCH, compile=c)
        build_s[variant] = time.perf_counter() - t0
    fns: dict[str, Callable[[], Any]] = {"fp32": lambda: model(x)}
    for variant, q in built.items():
        fns[variant] = lambda q=q: q(x)
    with torch.no_grad():
        for fn in fns.values():
            fn()
        t = _interleaved(fns, rounds=3 if quick else 7, reps=2 if quick else 3)
        ref = model(images)
        err = {n: float((q(images) - ref).norm() / ref.norm()) for n, q in built.items()}
    threads = torch.get_num_threads()
    label = {"vgg16": "VGG16", "resnet34": "ResNet34", "resnet50": "ResNet50"}[name]
    rows = []
    for variant in built:
        ratio = t["fp32"] / t[variant]
        note = (f"{BATCH / t[variant]:.0f} vs {BATCH / t['fp32']:.0f} img/s, {threads} threads; "
                f"logits off fp32 by {err[variant]:.2%} (relative L2, 256 images, goal <= 1%); "
                f"built in {build_s[variant]:.1f}s")  # fmt: skip
        if quick and name == "vgg16":
            note += "; --quick skips the faster torch.compile variant"
        met = ratio >= 4 and err[variant] <= 0.01
        rows.append(_row(f"int8 inference {label} batch {BATCH}, {variant}", "fp32 eager",
                         t["fp32"], t[variant], ratio, ">= 4x throughput, <= 1% L2", met,
                         note))  # fmt: skip
    return rows


def size_rows(quick: bool) -> list[dict[str, Any]]:
    """The .ecsz file vs the dense fp32 state dict and a naive CSR baseline."""
    import tempfile
    from pathlib import Path

    from ecs_core.quant.codec import load_compressed, save_compressed
    from ecs_core.quant.kmeans import share_weights
    from ecs_core.quant.stage import csr_bytes, dense_bytes

    model, mask, _ = pruned_vgg16()
    share_weights(model, BITS, mask)
    meta = {"model": "vgg16", "num_classes": 10, "in_channels": 3, "width": 1.0, "bits": BITS}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vgg16.ecsz"
        t = time.perf_counter()
        size = save_compressed(path, model, mask, meta)
        enc_s = time.perf_counter() - t
        t = time.perf_counter()
        decoded, _ = load_compressed(path)
        dec_s = time.perf_counter() - t
    pairs = zip(model.state_dict().values(), decoded.state_dict().values(), strict=True)
    exact = all(torch.equal(a, b) for a, b in pairs)
    dense, csr = dense_bytes(model), csr_bytes(model)
    note = (f"{size:,} vs {dense:,} bytes; encode {enc_s:.2f}s, decode {dec_s:.2f}s; "
            f"decoded bit-exact: {exact}")  # fmt: skip
    return [
        _row(f"compressed file, VGG16 {DENSITY:.0%} SNIP mask, {BITS} bits",
             "dense fp32 state dict", None, None, dense / size, ">= 60x smaller",
             dense / size >= 60 and exact, note, check_failed=not exact),
        _row("compressed file vs naive sparse", "CSR, fp32 values + int32 indices", None, None,
             csr / size, "smaller", csr > size, f"CSR {csr:,} bytes"),
    ]  # fmt: skip


def rows(quick: bool = False) -> list[dict[str, Any]]:
    """Every quantization benchmark row (quick: subsampled optimum, no torch.compile)."""
    return sharing_rows(quick) + int8_rows(quick) + size_rows(quick)


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    for r in rows(quick):
        ref = "-" if r["reference_s"] is None else f"{r['reference_s']:.4f}s"
        ours = "-" if r["ours_s"] is None else f"{r['ours_s']:.4f}s"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        mark = {True: "met", False: "NOT met", None: "not measured"}[r["met"]]
        print(f"{r['what']}\n  vs {r['reference']}: ref {ref}, ours {ours}, ratio {ratio} "
              f"(goal {r['goal']}: {mark})\n  {r['note']}")  # fmt: skip


if __name__ == "__main__":
    main()
