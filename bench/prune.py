"""Global ECS and SNIP masks on full-width VGG16 and ResNet50: ours vs the original's code.

The scores are real: SNIP's |g * w| and ECS's |w|, |g| from one batch through the engine's own
scoring, on seeded random CIFAR-shaped images (the threshold code only sees the numbers). Only
the step from scores to mask is timed, on both sides: `mask_from_scores` / `ecs_mask` (union
budget, the original's rule) against `bench.reference.percentile_mask`. The masks must be
identical; a difference fails the row and the whole run.

Both sides run with one torch thread. The original's code is single-threaded numpy, so this
is the like-for-like (and conservative) comparison: on an idle machine ours gets faster with
more threads, while on a shared one extra OpenMP threads mostly wait for each other.

Run alone: `python -m bench.prune [--quick]`.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from bench.common import interleaved, median, row

DENSITY = 0.05  # the original's default retain fraction
GOAL = 20.0  # ours must be at least this many times faster


def scores(model_name: str, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """SNIP and ECS scores of a freshly initialised full-width model (10 classes, RGB 32x32)."""
    from ecs_core.models import build_model
    from ecs_core.prune.ecs import ecs_scores
    from ecs_core.prune.snip import snip_scores

    torch.manual_seed(seed)
    model = build_model(model_name, num_classes=10, in_channels=3, width=1.0)
    g = torch.Generator().manual_seed(seed)
    batch = [(torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g))]
    w_abs, g_abs = ecs_scores(model, batch, 1)
    return {"snip": snip_scores(model, batch, 1), "w": w_abs, "g": g_abs}


def same_mask(ref: dict[str, torch.Tensor], ours: dict[str, torch.Tensor]) -> int:
    """How many weights the two masks disagree on (0: identical)."""
    return sum(int(torch.count_nonzero(ref[k].bool() != ours[k])) for k in ours)


def _row(method: str, model_name: str, times: dict, n: int, kept: int, diff: int) -> dict:
    ref_s, ours_s = median(times["reference"]), median(times["ours"])
    ratio = ref_s / ours_s
    same = "identical mask" if diff == 0 else f"MASKS DIFFER in {diff:,} weights"
    return row(
        what=f"global {method} mask, {model_name} (full width, {n / 1e6:.1f}M weights)",
        reference="numpy-list np.percentile (original)",
        reference_s=ref_s,
        ours_s=ours_s,
        ratio=ratio,
        goal=f"≥ {GOAL:.0f}×, identical mask",
        met=ratio >= GOAL and diff == 0,
        note=f"{same} ({kept:,} kept at density {DENSITY}); 1 thread; "
        f"median of {len(times['ours'])}",
        check_failed=diff != 0,
    )


def model_rows(model_name: str, reps: int) -> list[dict[str, Any]]:
    """The SNIP row and the ECS row for one architecture."""
    from bench.reference.percentile_mask import ecs_union_mask, percentile_mask, retain_keeping
    from ecs_core.prune.ecs import ecs_mask
    from ecs_core.prune.mask import keep_count, mask_from_scores

    s = scores(model_name)
    n = sum(v.numel() for v in s["w"].values())
    kept = keep_count(n, DENSITY)
    retain = retain_keeping(n, kept)  # within 1/n of DENSITY; see its docstring
    out: dict[str, dict] = {}

    def snip_ours() -> None:
        out["snip"] = mask_from_scores(s["snip"], DENSITY, "global")

    def snip_ref() -> None:
        out["snip_ref"] = percentile_mask(s["snip"], retain)

    def ecs_ours() -> None:
        out["ecs"] = ecs_mask(s["w"], s["g"], DENSITY, "global", "union")[0]

    def ecs_ref() -> None:
        out["ecs_ref"] = ecs_union_mask(s["w"], s["g"], retain)

    rows = []
    times = interleaved({"reference": snip_ref, "ours": snip_ours}, reps, warmup=0)
    rows.append(_row("SNIP", model_name, times, n, kept, same_mask(out["snip_ref"], out["snip"])))
    out.pop("snip_ref")
    times = interleaved({"reference": ecs_ref, "ours": ecs_ours}, reps, warmup=0)
    ecs_kept = sum(int(torch.count_nonzero(m)) for m in out["ecs"].values())
    rows.append(_row("ECS", model_name, times, n, ecs_kept, same_mask(out["ecs_ref"], out["ecs"])))
    return rows


def rows(quick: bool = False) -> list[dict[str, Any]]:
    """VGG16 and ResNet50 (quick: VGG16 only, one repetition)."""
    models = ("vgg16",) if quick else ("vgg16", "resnet50")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [r for name in models for r in model_rows(name, reps=1 if quick else 3)]
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    from bench.common import plain_table

    print(plain_table(rows(quick="--quick" in sys.argv)))
