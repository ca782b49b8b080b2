"""`load_run(path)`: one run directory, loaded once, serving every view's numbers.

Files are read lazily and kept: a TUI switching tabs, or `ecs show` drawing one view, reads
only what that view needs, and only once. Missing files give a `StatsError` that names them
(or, for optional ones such as `quantized.safetensors`, an empty part of the answer).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from ecs_core import events as ev
from ecs_core import safeio
from ecs_core.runfiles import run_state
from ecs_core.stats import summary as sm
from ecs_core.stats.activations import Activations, activation_maps
from ecs_core.stats.clusters import Clusters, clusters_for
from ecs_core.stats.weights import (
    KernelMaps,
    Sparsity,
    StatsError,
    kernel_maps,
    layer_densities,
    layer_kind,
    pick_layer,
    sparsity_from_rows,
)
from ecs_core.summary import Summary


def _read_json(path: Path) -> Any:
    try:
        return safeio.read_json(path)
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _read_summary(path: Path) -> dict[str, Any]:
    """summary.json through the one typed loader (`Summary.from_dict`): a value of the wrong
    kind reads as absent, so no view meets a string where a number belongs; {} without one."""
    summary = _read_json(path / "summary.json")
    return Summary.from_dict(summary).to_dict() if isinstance(summary, dict) else {}


def _natural_key(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in name.split(".")]


class RunView:
    """A run directory's numbers. Example::

    view = load_run("runs/20250101-120000-vgg16-digits-ecs-d0.05-s0")
    view.sparsity().density, view.curves().test_acc[-1], view.kernels("features.0").maps[0]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise StatsError(f"{self.path} is not a run directory (no config.json)")
        config = _read_json(self.path / "config.json")
        if not isinstance(config, dict):
            raise StatsError(
                f"{self.path / 'config.json'} is not a readable JSON object; it is damaged: "
                "restore it or delete the run"
            )
        self.config: dict[str, Any] = config
        self.summary: dict[str, Any] = _read_summary(self.path)

    def reload(self) -> None:
        """Forget what was read, for a run that is still writing (the TUI's --watch)."""
        for key in ("events", "weights", "order", "_tensors", "_model_data"):
            self.__dict__.pop(key, None)
        self.summary = _read_summary(self.path)

    # --- files, each read once
    @cached_property
    def events(self) -> list[ev.Event]:
        """The run's events (the last `safeio.MAX_EVENT_LINES`: `events_note` says so)."""
        from ecs_core.runfiles import read_event_log

        try:
            log = read_event_log(self.path)
        except safeio.FileRefused as exc:
            raise StatsError(str(exc)) from None
        self.__dict__["_events_note"] = (
            f"{self.path / 'events.jsonl'} is longer than a run writes: only its last "
            f"{safeio.MAX_EVENT_LINES:,} lines ({safeio.MAX_EVENT_BYTES >> 20} MiB at most) "
            "were read"
            if log.tail_only
            else None
        )
        return log.events

    @property
    def events_note(self) -> str | None:
        """A line for the views when they show only the tail of events.jsonl, else None."""
        self.events  # noqa: B018 (reading them sets the note)
        return self.__dict__.get("_events_note")

    @property
    def status(self) -> str:
        """finished | stopped | failed (summary.json), else running | incomplete."""
        return run_state(self.path, self.summary)

    def tensors(self, name: str) -> dict[str, torch.Tensor] | None:
        """A safetensors file of the run (model, masks, quantized), or None if absent/unreadable."""
        cache = self.__dict__.setdefault("_tensors", {})
        if name not in cache:
            from ecs_core.store import RunStore, StoreError

            try:
                cache[name] = RunStore(self.path).load_tensors(name)
            except StoreError:
                cache[name] = None
        return cache[name]

    @cached_property
    def weights(self) -> dict[str, torch.Tensor]:
        """Final fp32 weights: model.safetensors, else the last checkpoint (a run still going).

        A file that is there but unreadable is an error naming it, never a silent fallback."""
        from ecs_core.store import RunStore, StoreError

        store = RunStore(self.path)
        if (self.path / "model.safetensors").exists():
            found = self.tensors("model.safetensors")  # read once, shared with the other views
            if found is not None:
                return found
            try:  # unreadable: read it again for the reason
                store.load_tensors("model.safetensors")
            except StoreError as exc:
                raise StatsError(
                    f"{exc}; restore it, or delete it to show the last checkpoint instead"
                ) from exc
        try:
            state = store.load_checkpoint("last.pt")
        except StoreError as exc:
            raise StatsError(str(exc)) from exc
        found = state.get("model") if isinstance(state, dict) else None
        if state is not None and not isinstance(found, dict):
            raise StatsError(
                f"{self.path / 'checkpoints' / 'last.pt'} holds no model weights; it is damaged"
            )
        if not found:
            raise StatsError(
                f"{self.path} has no model.safetensors or checkpoint yet "
                "(the run may have failed before its first epoch)"
            )
        return found

    @cached_property
    def order(self) -> list[str]:
        """Prunable weight names (Conv2d, Linear) in model order."""
        rows = self.summary.get("layers")
        rows = rows if isinstance(rows, list) else []
        names = [r["name"] for r in rows if isinstance(r, dict) and isinstance(r.get("name"), str)]
        if not names:  # no summary yet: ask the architecture (slower: imports the registry)
            names = self._model_order() or []
        if not names:
            names = sorted(
                (k for k, v in self.weights.items() if k.endswith("weight") and v.dim() in (2, 4)),
                key=_natural_key,
            )
        return names

    def _model_order(self) -> list[str] | None:
        """Build the architecture on the meta device (no memory, no init) to read its order."""
        from ecs_core.models import build_model, prunable_weights

        try:
            with torch.device("meta"):
                model = build_model(
                    str(self.config.get("model")), 10, 3, float(self.config["width"])
                )
        except Exception:  # an unknown or odd config falls back to other sources
            return None
        return list(prunable_weights(model))

    # --- layers
    def layer(self, spec: str | None, kind: str | None = None, default: str = "first") -> str:
        """Resolve `--layer`: a full name, a module name without `.weight`, or a 1-based index."""
        names = [n for n in self.order if kind is None or self._kind(n) == kind]
        if not names:
            raise StatsError(f"{self.path} has no {kind or 'prunable'} layers")
        if spec is None and default == "most_kept":  # the largest can be one pruning emptied
            kept = {r.name: r.kept for r in self.sparsity().layers}
            return max(names, key=lambda n: (kept.get(n, 0), self._numel(n)))
        return pick_layer(names, spec, f"{kind} layer" if kind else "layer")

    def _weight(self, name: str) -> torch.Tensor:
        """One layer's final weights: present and finite, else a StatsError naming the file."""
        found = "model.safetensors" if self.tensors("model.safetensors") else "checkpoints/last.pt"
        return _checked(self.weights, name, self.path / found)  # type: ignore[return-value]

    def _shape(self, name: str) -> tuple[int, ...]:
        for source in ("masks.safetensors", "model.safetensors"):
            t = self.tensors(source)
            if t is not None and name in t:
                return tuple(t[name].shape)
        return tuple(self.weights[name].shape)

    def _kind(self, name: str) -> str:
        return layer_kind(self._shape(name))

    def _numel(self, name: str) -> int:
        n = 1
        for d in self._shape(name):
            n *= d
        return n

    # --- views
    def sparsity(self) -> Sparsity:
        """Per-layer density from the saved mask; a dense run counts its non-zero weights."""
        target = sm.num(self.summary.get("target_density", self.config.get("density")))
        masks = self.tensors("masks.safetensors")
        if masks is not None:
            from ecs_core.prune.mask import not_binary

            why = not_binary(masks, self.path / "masks.safetensors")
            if why:
                raise StatsError(why)
        if masks is not None and set(self.order) <= set(masks):
            return sparsity_from_rows(layer_densities(masks, self.order), target, "masks")
        if self.tensors("model.safetensors") is not None:
            return sparsity_from_rows(layer_densities(self.weights, self.order), target, "weights")
        rows = self.summary.get("layers")
        if isinstance(rows, list) and rows:
            return _sparsity_from_summary(rows, target)
        raise StatsError(f"{self.path} has no masks, weights or per-layer summary yet")

    def clusters(self, layer: str | None = None, bins: int = 60) -> Clusters:
        """Weight-value histograms of a layer before and after weight sharing (default: the layer
        with the most kept weights, not the largest: on a ResNet that can be one with 20 left)."""
        name = self.layer(layer, default="most_kept")
        after = self.tensors("quantized.safetensors")
        shared = (
            _checked(after, name, self.path / "quantized.safetensors", False) if after else None
        )
        return clusters_for(name, self._weight(name), shared, bins, self.summary,
                            after is not None)  # fmt: skip

    def kernels(self, layer: str | None = None, offset: int = 0, limit: int = 64) -> KernelMaps:
        """A page of per-filter kernel maps of a conv layer (default: the first)."""
        name = self.layer(layer, kind="conv")
        return kernel_maps(self._weight(name), name, offset, limit)

    def activations(
        self,
        image: int = 0,
        layer: str | None = None,
        offset: int = 0,
        limit: int = 64,
        data_dir: str | Path | None = None,
    ) -> Activations:
        """Maps for test image `image`: per layer, or per channel of `layer` (e.g. `features.2`)."""
        model, data = self._model_and_data(data_dir)
        n = len(data.test_y)
        if not 0 <= image < n:
            raise StatsError(f"--image must be in 0..{n - 1} (the test split has {n} images)")
        mean = torch.tensor(data.mean).view(-1, 1, 1)
        std = torch.tensor(data.std).view(-1, 1, 1)
        x = (data.test_x[image].float() / 255 - mean) / std
        if layer is not None and layer.endswith(".weight"):
            layer = layer[: -len(".weight")]
        label = int(data.test_y[image])
        return activation_maps(model, x, image, label, layer, offset, limit)

    def _model_and_data(self, data_dir: str | Path | None):
        key = str(data_dir)
        cache = self.__dict__.setdefault("_model_data", {})
        if key not in cache:
            from ecs_core.data import DatasetError, load_dataset
            from ecs_core.models import build_model
            from ecs_core.trust import UntrustedModel

            where = data_dir if data_dir is not None else self.config.get("data_dir", "./data")
            weights = self.weights  # its own clear error when missing
            try:
                data = load_dataset(str(self.config.get("dataset")), where, download=False)
                width = float(self.config.get("width", 1.0))
                model = build_model(
                    str(self.config.get("model")),
                    data.num_classes,
                    data.in_channels,
                    width,
                    source=str(self.path / "config.json"),
                )
                model.load_state_dict(weights)
            except UntrustedModel as exc:  # its own line; the app asks (`exc.__cause__`)
                raise StatsError(str(exc)) from exc
            except (DatasetError, ValueError, RuntimeError, KeyError) as exc:
                raise StatsError(f"cannot rebuild the model of {self.path}: {exc}") from exc
            cache[key] = (model, data)
        return cache[key]

    def curves(self, max_points: int = 200) -> sm.Curves:
        return sm.curves_from_events(self.events, max_points)

    def turnover(self) -> sm.Turnover:
        """SET, RigL: connections moved at each mask update (StatsError for a run without)."""
        data = sm.turnover_from_events(self.events)
        if data is None:
            method = self.config.get("method", "?")
            raise StatsError(
                f"{self.path} has no mask updates: turnover is for --method set or rigl "
                f"(this run: {method}), once its first update has come"
            )
        return data

    def overlap(self) -> sm.Overlap | None:
        return sm.overlap_from(self.summary, self.events)

    def quant_table(self) -> sm.QuantTable | None:
        """From summary.json; else counted from model/quantized.safetensors when both exist."""
        table = sm.quant_from_summary(self.summary)
        if table is not None and table.layers:
            return table
        before, after = self.tensors("model.safetensors"), self.tensors("quantized.safetensors")
        if before is None or after is None:
            return table
        from ecs_core.stats.clusters import quant_table_from_tensors

        return quant_table_from_tensors(before, after, self.order, self.summary)

    def sizes(self) -> sm.Sizes | None:
        return sm.sizes_from(self.summary)

    def accuracies(self) -> list[sm.StageAccuracy]:
        return sm.stage_accuracies(self.summary, self.events)

    def figure(self, view: str, **options: Any) -> Any:
        """A view as a matplotlib Figure (`ecs_core.figures.run_figure`: layer, image, page,
        metric, data_dir), e.g. `load_run(path).figure("kernels").savefig("k.pdf")`."""
        from ecs_core.figures import run_figure

        return run_figure(self, view, **options)


def _checked(
    tensors: dict[str, torch.Tensor], name: str, where: Path, required: bool = True
) -> torch.Tensor | None:
    """`tensors[name]`, refusing a missing (when `required`) or non-finite tensor in one line."""
    t = tensors.get(name)
    if not isinstance(t, torch.Tensor):
        if not required:
            return None
        raise StatsError(
            f"{where} has no tensor {name!r}: it does not hold this run's weights; "
            "restore it or run again"
        )
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise StatsError(
            f"{where}: {name} holds NaN or infinite values; the file is damaged (or the run "
            "diverged): restore it or run again"
        )
    return t


def _sparsity_from_summary(rows: list[Any], target: float | None) -> Sparsity:
    from ecs_core.stats.weights import LayerDensity

    out = []
    for r in rows:
        if isinstance(r, dict) and isinstance(r.get("name"), str):
            params, kept = sm.integer(r.get("params")) or 0, sm.integer(r.get("kept")) or 0
            out.append(LayerDensity(r["name"], "?", (), params, kept, kept / max(1, params)))
    return sparsity_from_rows(out, target, "summary")


def load_run(path: str | Path) -> RunView:
    """Open a run directory; raises `StatsError` (one line) if it is not one."""
    return RunView(path)
