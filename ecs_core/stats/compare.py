"""The research table: test accuracy, mean ± std over seeds, per model × method × target density.

Rows are (model, method) with the original report's labels: SNIP, ECS (P) (pruned), ECS (P+Q)
(pruned, k-means weight sharing and 8 bits: the int8 model's accuracy, `RunInfo.pq_acc`; the
shared-weight fp32 model's where no int8 model was built, marked †), Magnitude, Random, and
Dense (method none, the 100% column); an ablated run (`--ablate`) is a row of its own
(`SNIP [shuffle]`). Columns are target densities. Because ECS's union budget keeps between x
and 2x, each cell also carries the achieved density, so a table can show it wherever it differs
from the target (and a `d/target` column says by how much). `baseline` gives every cell as its
difference, in points, to a reference row: Dense, or a method at the same density.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ecs_core.names import ConfigError, canonical_name
from ecs_core.registry import PRUNERS
from ecs_core.stats.errors import StatsError
from ecs_core.stats.runs import RunInfo, find_runs, run_info

LABELS = {"snip": ["SNIP"], "ecs": ["ECS (P)", "ECS (P+Q)"], "none": ["Dense"],
          "random": ["Random"], "magnitude": ["Magnitude"], "grasp": ["GraSP"],
          "synflow": ["SynFlow"], "imp": ["IMP"]}  # fmt: skip
"""Method name -> row labels (pruned; pruned + quantized)."""
METHOD_ORDER = ("Dense", "SNIP", "ECS (P)", "ECS (P+Q)", "GraSP", "SynFlow", "IMP", "Magnitude",
                "Random")  # fmt: skip
MODEL_LABELS = {"vgg16": "VGG16", "vgg19": "VGG19", "resnet18": "ResNet18",
                "resnet34": "ResNet34", "resnet50": "ResNet50"}  # fmt: skip
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion-mnist": "Fashion-MNIST"}
ACHIEVED_TOLERANCE = 0.02
"""Achieved density is shown when it differs from the target by more than 2% of the target."""


@dataclass(frozen=True)
class CompareCell:
    """One cell: runs with the same dataset, model, method label and target density."""

    dataset: str
    model: str
    method: str
    target_density: float
    n: int
    mean: float
    std: float | None
    """Sample standard deviation (n - 1) over seeds; None for a single run."""
    achieved: float | None
    """Mean achieved density of the runs."""
    seeds: list[int]
    runs: list[str]
    fp32_pq: int = 0
    """P+Q rows: runs without an int8 model, whose shared-weight fp32 accuracy stands in."""
    ablate: str = "none"
    """The runs' --ablate (none for the method itself)."""
    base: str = ""
    """The row label without the ablation tag (`SNIP` for `SNIP [shuffle]`)."""
    collapsed: int = 0
    """Runs whose pruning left a layer with no weights (layer collapse)."""
    thinnest: int | None = None
    """The fewest weights any layer kept, over the cell's runs (see `RunInfo.thinnest`)."""

    @property
    def achieved_differs(self) -> bool:
        if self.achieved is None:
            return False
        return abs(self.achieved - self.target_density) > ACHIEVED_TOLERANCE * self.target_density

    @property
    def ratio(self) -> float | None:
        """Achieved / target density (1.0 when the method kept exactly what it was asked)."""
        return None if self.achieved is None else self.achieved / self.target_density


@dataclass(frozen=True)
class CompareTable:
    cells: list[CompareCell]
    datasets: list[str]
    densities: list[float]
    """Column target densities, largest first (1.0 is the dense column)."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(run path, why it is not in the table)."""

    def rows(self, dataset: str) -> list[tuple[str, str]]:
        """(model, method) pairs of one dataset, models by name, methods in METHOD_ORDER."""
        pairs = {(c.model, c.method) for c in self.cells if c.dataset == dataset}
        return sorted(pairs, key=lambda p: (p[0], method_rank(p[1]), p[1]))

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

    def caption(self, baseline: str | None = None) -> str:
        """NOTE (or what a baseline table shows), plus what its marks mean where it has them."""
        lines = [self.NOTE]
        if baseline is not None:
            lines = [f"points against {baseline} (its own row: test accuracy %); "
                     "± = the cell's std over seeds; (d x%) = achieved density"]  # fmt: skip
        if any("(P+Q)" in c.method for c in self.cells):
            lines.append(self.PQ_NOTE)
        if any(c.collapsed for c in self.cells):
            lines.append(self.COLLAPSE_NOTE)
        if any(c.achieved_differs for c in self.cells):
            lines.append(self.RATIO_NOTE)
        return "\n".join(lines)

    def baseline_of(self, cell: CompareCell, baseline: str) -> CompareCell | None:
        """The cell a baseline row gives `cell`: Dense's (any density), else the same density's."""
        density = 1.0 if baseline == DENSE else cell.target_density
        return self.cell(cell.dataset, cell.model, baseline, density)

    def versus(self, cell: CompareCell, baseline: str) -> float | None:
        """`cell`'s mean minus its baseline's, in points (None without a baseline cell)."""
        ref = self.baseline_of(cell, baseline)
        return None if ref is None else cell.mean - ref.mean

    def text_rows(
        self, dataset: str, baseline: str | None = None, count: bool = False
    ) -> tuple[list[str], list[list[str]]]:
        """Header and rows of one dataset's table (rows model × method, columns density).

        A `d/target` column is added when any cell misses its target density; with `baseline`
        (a row label, e.g. `Dense`), cells show their difference to it in points; `count`: each
        cell says how many runs it averages (`format_cell`).
        """
        ratios = any(c.achieved_differs for c in self.cells if c.dataset == dataset)
        header = ["model", "method"] + [f"{d * 100:g}%" for d in self.densities]
        header += ["d/target"] if ratios else []
        rows = []
        for model, method in self.rows(dataset):
            cells = [self.cell(dataset, model, method, d) for d in self.densities]
            if baseline is None or method == baseline:
                texts = [format_cell(c, count=count) for c in cells]
            else:
                diffs = [self.versus(c, baseline) if c else None for c in cells]
                texts = [format_versus(c, d, count) for c, d in zip(cells, diffs, strict=True)]
            if ratios:
                texts.append(format_ratios([c.ratio for c in cells if c and c.ratio]))
            rows.append([model, method, *texts])
        return header, rows

    def markdown(self, baseline: str | None = None) -> str:
        """One Markdown table per dataset, as in the README and the original report."""
        out = []
        for dataset in self.datasets:
            header, rows = self.text_rows(dataset, baseline)
            note = self.caption(baseline).replace("\n", "; ")
            out += [f"{dataset}: {note}", "", "| " + " | ".join(header) + " |"]
            out.append("|" + " --- |" * len(header))
            out += ["| " + " | ".join(row) + " |" for row in rows]
            out.append("")
        return "\n".join(out) + "\n"

    def csv(self, baseline: str | None = None) -> str:
        """One row per cell (long format, for scripts and spreadsheets); with `baseline`, a
        `vs_<baseline>` column of differences in points."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        extra = [f"vs_{baseline.lower().replace(' ', '_')}"] if baseline else []
        w.writerow(["dataset", "model", "method", "ablate", "target_density", "n", "mean", "std",
                    "achieved_density", "density_ratio", "seeds", "fp32_pq", "collapsed_runs",
                    "thinnest_layer_kept", *extra])  # fmt: skip
        for c in self.cells:
            std = "" if c.std is None else f"{c.std:.4f}"
            achieved = "" if c.achieved is None else f"{c.achieved:.6f}"
            ratio = "" if c.ratio is None else f"{c.ratio:.4f}"
            row = [c.dataset, c.model, c.method, c.ablate, c.target_density, c.n,
                   f"{c.mean:.4f}", std, achieved, ratio, " ".join(map(str, c.seeds)), c.fp32_pq,
                   c.collapsed, "" if c.thinnest is None else c.thinnest]  # fmt: skip
            if baseline:
                v = self.versus(c, baseline)
                row.append("" if v is None or c.method == baseline else f"{v:.4f}")
            w.writerow(row)
        return buf.getvalue()


DENSE = "Dense"
"""The dense model's row label (method none)."""


def baseline_label(name: str) -> str:
    """`--baseline dense` (or none, snip, ecs, ...) -> the row label it compares against."""
    try:
        method = canonical_name(name, PRUNERS, "--baseline method")
    except ConfigError as exc:
        raise StatsError(str(exc)) from None
    return LABELS.get(method, [method])[0]


def format_versus(cell: CompareCell | None, diff: float | None, count: bool = False) -> str:
    """'-1.23 ± 0.40' (points against the baseline, the cell's own std), or '–' without one."""
    return "–" if cell is None or diff is None else format_cell(cell, diff, count)


def format_ratios(ratios: list[float]) -> str:
    """A row's achieved/target densities: '1.00×', or the range '1.81–1.97×'."""
    if not ratios:
        return "–"
    lo, hi = min(ratios), max(ratios)
    return f"{lo:.2f}×" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}×"


def format_cell(cell: CompareCell | None, diff: float | None = None, count: bool = False) -> str:
    """'93.85 ± 0.28', plus '(d 9.71%)' when the achieved density is not the target; with
    `diff`, that signed difference (points against a baseline) instead of the mean; `count`
    adds the number of runs, '93.85 ± 0.28 (3)' (the app's table, where runs still arrive)."""
    if cell is None:
        return "–"
    text = f"{cell.mean:.2f}" if diff is None else f"{diff:+.2f}"
    text += f" ± {cell.std:.2f}" if cell.std is not None else ""
    text += f" ({cell.n})" if count else ""
    text += "†" if cell.fp32_pq else ""
    text += f"‡{cell.collapsed}/{cell.n}" if cell.collapsed else ""
    if cell.achieved_differs and cell.target_density < 1:
        text += f" (d {cell.achieved:.2%})"
    return text


def method_rank(label: str) -> int:
    base = label.split(" [")[0]
    return METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER)


def model_label(model: str, width: float | None) -> str:
    name = MODEL_LABELS.get(model, model)
    return name if width in (None, 1.0) else f"{name} x{width:g}"


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def method_entries(info: RunInfo, ablated: bool = True) -> list[tuple[str, float]]:
    """(label, accuracy) pairs a finished run contributes; ECS gives P and, if quantized, P+Q.

    Layer-wise scope, ECS's union budget and an `--ablate` check are not the defaults, so they
    are named in the label (`SNIP [layer]`, `ECS (P) [union]`, `SNIP [shuffle]`) rather than
    averaged with default-setting runs. `ablated=False`: the labels without the ablation tag.
    """
    base = LABELS.get(info.method, [info.method])
    tags = []
    if info.method != "none" and info.scope == "layer":
        tags.append("layer")
    if info.method == "ecs" and info.budget == "union":
        tags.append("union")
    if info.ablate != "none" and ablated:
        tags.append(info.ablate)
    suffix = f" [{', '.join(tags)}]" if tags else ""
    out = [(base[0] + suffix, info.test_acc)]
    if len(base) > 1 and info.pq_acc is not None:
        out.append((base[1] + suffix, info.pq_acc))
    return [(label, acc) for label, acc in out if acc is not None]


def compare_infos(infos: list[RunInfo]) -> CompareTable:
    """Group runs and average; runs that did not finish are listed in `skipped`, not averaged."""
    groups: dict[tuple[str, str, str, float], list[tuple[float, RunInfo]]] = {}
    base_of: dict[str, str] = {}
    skipped = []
    for info in infos:
        if info.status != "finished":
            skipped.append((info.path, f"status {info.status}"))
            continue
        entries = method_entries(info)
        if not entries or info.target_density is None:
            skipped.append((info.path, "no test accuracy or target density in summary.json"))
            continue
        target = round(info.target_density, 6)
        bases = [label for label, _ in method_entries(info, ablated=False)]
        for (label, acc), base in zip(entries, bases, strict=True):
            key = (dataset_label(info.dataset), model_label(info.model, info.width), label, target)
            groups.setdefault(key, []).append((acc, info))
            base_of[label] = base
    cells = [_cell(key, members, base_of[key[2]]) for key, members in groups.items()]
    datasets = sorted({c.dataset for c in cells})
    densities = sorted({c.target_density for c in cells}, reverse=True)
    return CompareTable(cells, datasets, densities, skipped)


def _cell(
    key: tuple[str, str, str, float], members: list[tuple[float, RunInfo]], base: str
) -> CompareCell:
    accs = [a for a, _ in members]
    achieved = [i.density for _, i in members if i.density is not None]
    return CompareCell(
        dataset=key[0], model=key[1], method=key[2], target_density=key[3], n=len(accs),
        mean=statistics.fmean(accs), std=statistics.stdev(accs) if len(accs) > 1 else None,
        achieved=statistics.fmean(achieved) if achieved else None,
        seeds=sorted(i.seed for _, i in members if i.seed is not None),
        runs=sorted(i.path for _, i in members),
        fp32_pq=sum(i.int8_acc is None for _, i in members) if "(P+Q)" in key[2] else 0,
        ablate=members[0][1].ablate, base=base, collapsed=sum(i.collapsed > 0 for _, i in members),
        thinnest=min((i.thinnest for _, i in members if i.thinnest is not None), default=None),
    )  # fmt: skip


def compare_runs(paths: list[str | Path]) -> CompareTable:
    """The table over run directories and folders of them (searched recursively)."""
    return compare_infos([run_info(p) for p in find_runs(paths)])
