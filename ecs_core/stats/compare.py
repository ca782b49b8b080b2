"""The research table: test accuracy, mean ± std over seeds, per model × method × target density.

Rows are (model, method) with the original report's labels: SNIP, ECS (P) (pruned), Magnitude,
Random, ..., and Dense (method none, the 100% column); every quantized method also has its P+Q
row, `SNIP (P+Q)`, `ECS (P+Q)` (pruned, k-means weight sharing and 8 bits: the int8 model's
accuracy, `RunInfo.pq_acc`; the shared-weight fp32 model's where no int8 model was built, marked
†); an ablated run (`--ablate`) is a row of its own (`SNIP [shuffle]`). Columns are target
densities. A cell pools only runs that differ in nothing but the seed (`config.recipe_fields`):
where a method's runs differ in anything else, each recipe is a row of its own whose label says
what sets it apart (`SNIP {epochs 3, max-batches 6}`), and two runs of one recipe with the same
seed count once (the newest finished; `CompareTable.duplicates` says which). Because ECS's union
budget keeps between x and 2x, each cell also carries the achieved density, so a table can show
it wherever it differs from the target (and a `d/target` column says by how much). `baseline`
gives every cell as its difference, in points, to a reference row (Dense, or a method at the
same density), with its standard error and a mark beyond a threshold (`stats.significance`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecs_core.config import RunConfig, choice_tags, spread
from ecs_core.names import ConfigError, canonical_name
from ecs_core.registry import PRUNERS
from ecs_core.stats.errors import StatsError
from ecs_core.stats.rows import (
    LABELS,
    CompareCell,
    Duplicate,
    apart,
    dataset_label,
    labels,
    make_cell,
    method_entries,
    model_label,
    one_per_seed,
    pq_label,
    recipe_suffix,
)
from ecs_core.stats.runs import RunInfo, find_runs, run_info
from ecs_core.stats.significance import THRESHOLD, Difference, paired, unpaired

METHOD_ORDER = ("Dense", "SNIP", "ECS (P)", "GraSP", "SynFlow", "IMP", "Magnitude", "Random")
"""Row order; a P+Q row follows its P row (`method_rank`)."""


SPEEDS = {"fp32_speedup": "fp32 ×dense", "int8_speedup": "int8 ×dense"}
"""Measured speed-up columns (shown when a run of the table measured its latency)."""


@dataclass(frozen=True)
class CompareTable:
    cells: list[CompareCell]
    datasets: list[str]
    densities: list[float]
    """Column target densities, largest first (1.0 is the dense column)."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(run path, why it is not in the table)."""
    duplicates: list[Duplicate] = field(default_factory=list)
    """Same recipe, same seed: the runs not averaged (a seed counts once)."""

    def rows(self, dataset: str) -> list[tuple[str, str]]:
        """(model, method) pairs of one dataset, models by name, methods in METHOD_ORDER, a
        method's recipes in turn, each with its ablations after it."""
        row = {(c.model, c.method): (c.base, c.ablate != "none") for c in self.cells
               if c.dataset == dataset}  # fmt: skip
        return sorted(row, key=lambda p: (p[0], method_rank(p[1]), *row[p], p[1]))

    def cell(self, dataset: str, model: str, method: str, density: float) -> CompareCell | None:
        for c in self.cells:
            key = (c.dataset, c.model, c.method, c.target_density)
            if key == (dataset, model, method, density):
                return c
        return None

    NOTE = "test accuracy %, mean ± std (n-1) over seeds; (d x%) = achieved density, not target"
    PQ_NOTE = (
        "P+Q = pruned + weight sharing + int8: the int8 model's accuracy "
        "(† = no int8 model, the shared-weight fp32 model's)"
    )
    COLLAPSE_NOTE = "‡ = in k of n seeds pruning emptied a whole layer (layer collapse)"
    RATIO_NOTE = "d/target = achieved density / target, over the row's columns"
    RECIPE_NOTE = "{...} = what sets the row's runs apart from its method's other runs"
    DUPLICATE_NOTE = "a seed run twice with one recipe counts once: the newest finished run"

    def caption(self, baseline: str | None = None, threshold: float = THRESHOLD) -> str:
        """NOTE (or what a baseline table shows), plus what its marks mean where it has them."""
        lines = [self.NOTE]
        if baseline is not None:
            lines = [f"points against {baseline} (its own row: test accuracy %); ± = standard "
                     f"error of the difference (Welch, over seeds; p = paired by seed); "
                     f"* = beyond {threshold:g} SE; (d x%) = achieved density"]  # fmt: skip
        if any(c.partner for c in self.cells):
            lines.append(self.PQ_NOTE)
        if any(c.collapsed for c in self.cells):
            lines.append(self.COLLAPSE_NOTE)
        if any(c.achieved_differs for c in self.cells):
            lines.append(self.RATIO_NOTE)
        if any(c.recipe for c in self.cells):
            lines.append(self.RECIPE_NOTE)
        if self.duplicates:
            lines.append(self.DUPLICATE_NOTE)
        return "\n".join(lines)

    def baseline_of(self, cell: CompareCell, baseline: str) -> CompareCell | None:
        """The cell a baseline row gives `cell`: Dense's (any density), else the same density's;
        of the baseline's recipes, the one that agrees with `cell`'s on every field that sets a
        row of either apart and both rows have (a P row has no `AFTER_PRUNING` fields; no
        agreement: no baseline)."""
        density = 1.0 if baseline == DENSE else cell.target_density
        mine = dict(cell.setting)
        for c in self.cells:
            key = (c.dataset, c.model, c.plain, c.target_density)
            if key != (cell.dataset, cell.model, baseline, density):
                continue
            theirs = dict(c.setting)
            fields = (
                ({f for f, _ in cell.recipe} | {f for f, _ in c.recipe})
                & mine.keys()
                & theirs.keys()
            )
            if all(mine[f] == theirs[f] for f in fields):
                return c
        return None

    def versus(self, cell: CompareCell, baseline: str) -> float | None:
        """`cell`'s mean minus its baseline's, in points (None without a baseline cell)."""
        ref = self.baseline_of(cell, baseline)
        return None if ref is None else cell.mean - ref.mean

    def difference(self, cell: CompareCell, baseline: str) -> Difference | None:
        """`cell` minus its baseline with the standard error: paired by seed where both hold the
        same runs or `cell` is an ablation of the baseline on the same seeds, Welch's otherwise
        (`stats.significance`); None without a baseline cell or for the baseline row itself."""
        ref = self.baseline_of(cell, baseline)
        if ref is None or ref is cell:
            return None
        if _pairs(cell, ref):
            return paired(dict(cell.accs), dict(ref.accs))
        return unpaired([a for _, a in cell.accs], [a for _, a in ref.accs])

    def text_rows(
        self,
        dataset: str,
        baseline: str | None = None,
        count: bool = False,
        threshold: float = THRESHOLD,
    ) -> tuple[list[str], list[list[str]]]:
        """Header and rows of one dataset's table (rows model × method, columns density).

        A `d/target` column is added when any cell misses its target density; with `baseline`
        (a row label, e.g. `Dense`), cells show their difference to it in points, ± its
        standard error, `*` beyond `threshold` SEs; `count`: each cell says how many runs it
        averages (`format_cell`).
        """
        ratios = any(c.achieved_differs for c in self.cells if c.dataset == dataset)
        mine = [c for c in self.cells if c.dataset == dataset]
        speeds = [k for k in SPEEDS if any(getattr(c, k) for c in mine)]
        header = ["model", "method"] + [f"{d * 100:g}%" for d in self.densities]
        header += ["d/target"] if ratios else []
        header += [SPEEDS[k] for k in speeds]
        rows = []
        for model, method in self.rows(dataset):
            cells = [self.cell(dataset, model, method, d) for d in self.densities]
            known = [c for c in cells if c is not None]
            if baseline is None or known[0].plain == baseline:
                texts = [format_cell(c, count=count) for c in cells]
            else:
                texts = [format_versus(c, self.difference(c, baseline) if c else None, count,
                                       threshold) for c in cells]  # fmt: skip
            if ratios:
                texts.append(format_ratios([c.ratio for c in known if c.ratio]))
            for k in speeds:  # measured speed-up x dense over the row's cells
                texts.append(format_ratios([getattr(c, k) for c in known if getattr(c, k)]))
            rows.append([model, method, *texts])
        return header, rows

    def markdown(self, baseline: str | None = None, threshold: float = THRESHOLD) -> str:
        """One Markdown table per dataset, as in the README and the original report."""
        out = []
        for dataset in self.datasets:
            header, rows = self.text_rows(dataset, baseline, threshold=threshold)
            note = self.caption(baseline, threshold).replace("\n", "; ")
            out += [f"{dataset}: {note}", "", "| " + " | ".join(header) + " |"]
            out.append("|" + " --- |" * len(header))
            out += ["| " + " | ".join(row) + " |" for row in rows]
            out.append("")
        return "\n".join(out) + "\n"

    def csv(self, baseline: str | None = None, threshold: float = THRESHOLD) -> str:
        """One row per cell (long format, for scripts and spreadsheets). `recipe`: what sets
        the row apart (`field=value ...`); `duplicates_left_out`: runs of a seed already
        counted. With `baseline`, `vs_<baseline>` (difference in points), `_se` (its standard
        error), `_z` (difference / SE), `_n` (seed pairs when paired, else the baseline's n),
        `_paired` and `_beyond` (|difference| > threshold × SE). `fp32_speedup`,
        `int8_speedup`: the cell's runs' mean measured speed-up ×dense (batch 64, one thread;
        empty where none was measured)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        vs = f"vs_{baseline.lower().replace(' ', '_')}" if baseline else ""
        extra = [vs, *(f"{vs}_{k}" for k in ("se", "z", "n", "paired", "beyond"))] if vs else []
        w.writerow(["dataset", "model", "method", "ablate", "distribution", "structure",
                    "target_density", "n", "mean", "std",
                    "achieved_density", "density_ratio", "seeds", "fp32_pq", "collapsed_runs",
                    "thinnest_layer_kept", "recipe", "duplicates_left_out", *SPEEDS,
                    *extra])  # fmt: skip
        for c in self.cells:
            std = "" if c.std is None else f"{c.std:.4f}"
            achieved = "" if c.achieved is None else f"{c.achieved:.6f}"
            ratio = "" if c.ratio is None else f"{c.ratio:.4f}"
            recipe = " ".join(f"{k}={v}" for k, v in c.recipe)
            row = [c.dataset, c.model, c.method, c.ablate, *_layout(c), c.target_density, c.n,
                   f"{c.mean:.4f}", std, achieved, ratio, " ".join(map(str, c.seeds)), c.fp32_pq,
                   c.collapsed, "" if c.thinnest is None else c.thinnest, recipe,
                   c.left_out]  # fmt: skip
            row += ["" if getattr(c, k) is None else f"{getattr(c, k):.4f}" for k in SPEEDS]
            if baseline:
                row += _csv_difference(self.difference(c, baseline), threshold)
            w.writerow(row)
        return buf.getvalue()


DENSE = "Dense"
"""The dense model's row label (method none)."""


def _layout(cell: CompareCell) -> tuple[str, str]:
    """(how the density is spread over layers: global | uniform | erk | er | from, what is
    removed: weight | channel) of a cell's runs, from their recipe (`config.spread`)."""
    s, d = dict(cell.setting), RunConfig()
    method = s.get("method")
    if method in (None, "none"):  # dense: nothing spread or removed
        return "", ""
    how = spread(method, s.get("scope", d.scope), s.get("distribution", d.distribution),
                 s.get("distribution_from", d.distribution_from))  # fmt: skip
    return how, s.get("structure", d.structure)


def _pairs(cell: CompareCell, ref: CompareCell) -> bool:
    """Pair by seed: the same runs (a P+Q row and its P row), or an ablation of the method's
    own runs (same seeds, same initial weights), with the same seeds, each once, at least 2."""
    seeds = [s for s, _ in cell.accs]
    same_seeds = seeds == [s for s, _ in ref.accs] and len(set(seeds)) == len(seeds) > 1
    ablation = cell.ablate != "none" and ref.ablate == "none" and cell.base == ref.method
    return same_seeds and None not in seeds and (cell.runs == ref.runs or ablation)


def _csv_difference(d: Difference | None, threshold: float) -> list[str]:
    if d is None:
        return [""] * 6
    se = "" if d.se is None else f"{d.se:.4f}"
    z = "" if d.z is None else f"{d.z:.2f}"
    return [f"{d.diff:.4f}", se, z, str(d.n), str(d.paired).lower(),
            str(d.beyond(threshold)).lower()]  # fmt: skip


def baseline_label(name: str, rows: Iterable[str] = ()) -> str:
    """`--baseline` -> the row label it compares against: a row label of the table as printed
    (`rows`: `GraSP` for runs from before the method's named choices, `SNIP [layer, channel]`),
    else a method (dense, none, snip, ecs, ...): its row at today's defaults, whose label names
    the choices unlike the runs before them (`GraSP [balanced, xavier]`, `IMP [fresh,
    dense-output]`: `config.choice_tags`, as `rows.labels` names a run's row)."""
    if name in rows:
        return name
    try:
        method = canonical_name(name, PRUNERS, "--baseline method")
    except ConfigError as exc:
        raise StatsError(str(exc)) from None
    config = RunConfig(method=method).validate()
    tags = choice_tags(method, config.choices, config.structure) if config.prunes else []
    label = LABELS.get(method, method)
    return f"{label} [{', '.join(tags)}]" if tags else label


def format_versus(
    cell: CompareCell | None,
    diff: Difference | None,
    count: bool = False,
    threshold: float = THRESHOLD,
) -> str:
    """'-1.23 ± 0.40*' (points against the baseline ± the difference's standard error, `*`
    beyond `threshold` SEs, ` p` when paired by seed), or '–' without a baseline cell."""
    if cell is None or diff is None:
        return "–"
    text = f"{diff.diff:+.2f}"
    text += f" ± {diff.se:.2f}" if diff.se is not None else ""
    text += " p" if diff.paired else ""
    text += "*" if diff.beyond(threshold) else ""
    return text + _marks(cell, count)


def format_ratios(ratios: list[float]) -> str:
    """A row's achieved/target densities: '1.00×', or the range '1.81–1.97×'."""
    if not ratios:
        return "–"
    lo, hi = min(ratios), max(ratios)
    return f"{lo:.2f}×" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}×"


def format_cell(cell: CompareCell | None, count: bool = False) -> str:
    """'93.85 ± 0.28', plus '(d 9.71%)' when the achieved density is not the target; `count`
    adds the number of runs, '93.85 ± 0.28 (3)' (the app's table, where runs still arrive)."""
    if cell is None:
        return "–"
    text = f"{cell.mean:.2f}"
    text += f" ± {cell.std:.2f}" if cell.std is not None else ""
    return text + _marks(cell, count)


def _marks(cell: CompareCell, count: bool) -> str:
    text = f" ({cell.n})" if count else ""
    text += "†" if cell.fp32_pq else ""
    text += f"‡{cell.collapsed}/{cell.n}" if cell.collapsed else ""
    if cell.achieved_differs and cell.target_density < 1:
        text += f" (d {cell.achieved:.2%})"
    return text


def method_rank(label: str) -> float:
    """A row label's place in METHOD_ORDER (a P+Q row just after its P row; others last)."""
    base = label.split(" [")[0].split(" {")[0]
    if base in METHOD_ORDER:
        return METHOD_ORDER.index(base)
    for name in METHOD_ORDER:
        if base == pq_label(name):
            return METHOD_ORDER.index(name) + 0.5
    return len(METHOD_ORDER)


def compare_infos(infos: list[RunInfo]) -> CompareTable:
    """Group runs and average; runs that did not finish are listed in `skipped`, not averaged;
    runs of a recipe and seed the cell already has are listed in `duplicates`."""
    skipped, usable = [], []
    for info in infos:
        if info.status != "finished":
            skipped.append((info.path, f"status {info.status}"))
        elif not method_entries(info) or info.target_density is None:
            skipped.append((info.path, "no test accuracy or target density in summary.json"))
        else:
            usable.append(info)
    where = apart(usable)
    groups: dict[tuple[str, str, str, float], list[tuple[float, RunInfo]]] = {}
    rows: dict[tuple[str, str, str, float], tuple[str, str, str, tuple[tuple[str, Any], ...]]]
    rows = {}
    for info in usable:
        p, pq = labels(info, ablated=True)
        base_p, base_pq = labels(info, ablated=False)
        for label, acc in method_entries(info):
            is_pq = label == pq and pq != p
            recipe = where[info.path, is_pq]
            suffix = recipe_suffix(recipe)
            p_suffix = recipe_suffix(where[info.path, False])
            key = (dataset_label(info.dataset), model_label(info.model, info.width),
                   label + suffix, round(info.target_density, 6))  # fmt: skip
            groups.setdefault(key, []).append((acc, info))
            rows[key] = (label, (base_pq if is_pq else base_p) + suffix,
                                    p + p_suffix if is_pq else "", recipe)  # fmt: skip
    cells, duplicates = [], []
    for key, members in groups.items():
        plain, base, partner, recipe = rows[key]
        kept, dups = one_per_seed(key, members)
        duplicates += [] if partner else dups
        cells.append(
            make_cell(key, kept, plain, base, partner, recipe, sum(len(d.left_out) for d in dups))
        )
    datasets = sorted({c.dataset for c in cells})
    densities = sorted({c.target_density for c in cells}, reverse=True)
    return CompareTable(cells, datasets, densities, skipped, duplicates)


def compare_runs(paths: list[str | Path]) -> CompareTable:
    """The table over run directories and folders of them (searched recursively)."""
    return compare_infos([run_info(p) for p in find_runs(paths)])
