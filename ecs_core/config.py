"""Run configuration: one frozen dataclass, one line of doc per field.

Every `ecs run` option maps to one field here, one to one; the TUI builds the same object.
`validate()` turns every bad value a user can type into a `ConfigError` naming the field and
the valid choices, before anything is created on disk.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ecs_core.names import ConfigError, canonical_name
from ecs_core.registry import DATASETS, MODELS, PRUNERS, pruner
from ecs_core.rounds import imp_densities

__all__ = ["ConfigError", "RunConfig", "canonical_name", "check_model_spec"]


INSTALL_EXTRA = "pip install 'ecs-tui[export]'"
"""What installs the optional libraries: ONNX export, figures (matplotlib), TensorBoard."""
SCOPES = ("global", "layer")
ABLATIONS = ("none", "shuffle", "reinit", "invert")
BUDGETS = ("exact", "union")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
FLOAT32_MAX = 3.4028234663852886e38
"""Rates and factors become float32 tensors in the optimizer: larger values overflow."""
SEED_RANGE = (-(2**63), 2**63 - 1)
"""What torch's generators take, with room for the seed + 1 and seed + rank used in a run."""


def check_model_spec(spec: str) -> str:
    """A model of the user's own, `dotted.module:factory` (stripped); else a `ConfigError`.
    Only the form is checked here; `models.custom` imports and calls it."""
    spec = spec.strip()
    module, _, attr = spec.partition(":")
    if not (all(p.isidentifier() for p in module.split(".")) and attr.isidentifier()):
        raise ConfigError(
            f"--model {spec!r}: a model of your own is given as package.module:factory"
        )
    return spec


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a run computes (plus where it writes)."""

    # --- what to train
    model: str = "vgg16"
    """Architecture: vgg16 / vgg19 (with batch norm), resnet18 / 34 / 50, CIFAR variants; or
    your own, `package.module:factory` with factory(num_classes, in_channels, width)."""
    dataset: str = "digits"
    """digits (embedded, works offline), fashion-mnist, cifar10 or cifar100."""
    width: float = 1.0
    """Channel multiplier; 0.25 gives a quarter-width model that trains on a laptop."""

    # --- how to prune
    method: str = "ecs"
    """Pruning method: ecs, snip, grasp, synflow, random, magnitude, or none (train dense)."""
    density: float = 0.05
    """Retained fraction of prunable (conv + linear) weights, in (0, 1]."""
    scope: str = "global"
    """global: one threshold over all layers; layer: keep `density` in every layer."""
    budget: str = "exact"
    """ECS only. exact: keep exactly `density`; union: top-x by |w| union top-x by |g| (x..2x)."""
    warmup_epochs: int = 1
    """Epochs trained before pruning, for methods that prune after training (ecs, magnitude)."""
    score_batches: int = 1
    """Batches whose gradients are summed to score connections (snip, ecs, grasp)."""
    ablate: str = "none"
    """Sanity check of the method: shuffle (each layer's mask permuted), reinit (kept weights
    re-initialised), invert (lowest scores kept), or none. Part of the run's name."""
    prune_iterations: int = 100
    """SynFlow: pruning rounds; round k keeps density**(k/n) (exponential schedule)."""
    prune_fraction: float = 0.2
    """IMP: fraction of the remaining weights removed each round (Frankle & Carbin: 0.2)."""
    rewind_epoch: int = 0
    """IMP: after each round the kept weights, optimizer and LR schedule go back to their
    state after this epoch of the dense run (0: initialisation, the original lottery ticket)."""
    allow_collapse: bool = False
    """Go on even if pruning leaves a layer with no weights at all."""

    # --- how to train (the original's defaults)
    epochs: int = 70
    """Total training epochs, warm-up included."""
    batch_size: int = 128
    """Images per optimizer step."""
    lr: float = 0.1
    """SGD learning rate at the start."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 5e-4
    """L2 penalty added by SGD."""
    step_size: int = 20
    """StepLR: multiply the learning rate by `gamma` every this many epochs."""
    gamma: float = 0.1
    """StepLR decay factor."""
    max_batches: int | None = None
    """Cap on batches per epoch (smoke runs); None trains on the whole training set."""
    seed: int = 0
    """Seeds model init, shuffling, augmentation and pruning; same seed, same run on CPU."""
    device: str = "auto"
    """auto (cuda when available), cpu or cuda."""
    precision: str = "auto"
    """auto: bf16 autocast on CUDA, fp32 on the CPU; or fp32, or bf16 (fast with AVX512-BF16)."""

    # --- quantization and export
    quantize: bool = True
    """After training a pruned model: k-means weight sharing, 8-bit, compressed file."""
    bits: int = 5
    """Weight sharing uses 2**bits clusters per layer (5 -> 32, as the original report)."""
    quantize_bn: bool = False
    """Also share batch-norm weights (the original did)."""
    finetune_epochs: int = 0
    """Epochs of centroid fine-tuning after weight sharing (Deep Compression)."""
    calib_batches: int = 8
    """Batches used to calibrate the int8 inference model."""

    # --- where
    data_dir: str = "./data"
    """Where datasets live (and are downloaded to, when the network allows)."""
    download: bool = True
    """Download a missing dataset (CIFAR, Fashion-MNIST) when the network allows."""
    runs_dir: str = "./runs"
    """Parent folder of run directories."""
    checkpoint_every: int = 1
    """Write a resumable checkpoint every this many epochs."""
    tensorboard: str = field(default="", compare=False)
    """Also write TensorBoard logs to this folder ("" = none); a sweep gives each cell a
    sub-folder. Where to log, not what to compute: a resume may change it."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Free-form notes carried into config.json (never read by the engine)."""

    def validate(self) -> RunConfig:
        """Return a copy with canonical names; raise `ConfigError` on the first bad field."""
        if ":" in self.model:
            model = check_model_spec(self.model)
        else:
            model = canonical_name(self.model, MODELS, "model")
        dataset = canonical_name(self.dataset, DATASETS, "dataset")
        method = canonical_name(self.method, PRUNERS, "method")
        scope = canonical_name(self.scope, SCOPES, "scope")
        ablate = canonical_name(self.ablate, ABLATIONS, "ablation (--ablate)")
        budget = canonical_name(self.budget, BUDGETS, "budget")
        device = canonical_name(self.device, DEVICES, "device")
        precision = canonical_name(self.precision, PRECISIONS, "precision")
        _check(0 < self.density <= 1, "density", f"must be in (0, 1], got {self.density}")
        _check(0 < self.width <= 8, "width", f"must be in (0, 8], got {self.width}")
        _check(self.epochs >= 0, "epochs", f"must be >= 0, got {self.epochs}")
        _check(self.batch_size >= 1, "batch-size", f"must be >= 1, got {self.batch_size}")
        _check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        _check(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")
        _check(self.weight_decay >= 0, "weight-decay", f"must be >= 0, got {self.weight_decay}")
        _check(self.step_size >= 1, "step-size", f"must be >= 1, got {self.step_size}")
        _check(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        _check(self.warmup_epochs >= 0, "warmup-epochs", f"must be >= 0, got {self.warmup_epochs}")
        _check(self.score_batches >= 1, "score-batches", f"must be >= 1, got {self.score_batches}")
        _check(
            self.prune_iterations >= 1,
            "prune-iterations",
            f"must be >= 1, got {self.prune_iterations}",
        )
        _check(
            0 < self.prune_fraction < 1,
            "prune-fraction",
            f"must be in (0, 1), got {self.prune_fraction}",
        )
        _check(self.rewind_epoch >= 0, "rewind-epoch", f"must be >= 0, got {self.rewind_epoch}")
        _check(
            pruner(method).when != "iterative" or self.rewind_epoch < self.epochs,
            "rewind-epoch",
            f"must be below --epochs ({self.epochs}): each round trains epochs "
            f"rewind-epoch+1..epochs, got {self.rewind_epoch}",
        )
        _check(
            self.max_batches is None or self.max_batches >= 1,
            "max-batches",
            f"must be >= 1, got {self.max_batches}",
        )
        _check(1 <= self.bits <= 8, "bits", f"must be in 1..8, got {self.bits}")
        _check(
            self.finetune_epochs >= 0,
            "finetune-epochs",
            f"must be >= 0, got {self.finetune_epochs}",
        )
        _check(self.calib_batches >= 1, "calib-batches", f"must be >= 1, got {self.calib_batches}")
        _check(
            self.checkpoint_every >= 1,
            "checkpoint-every",
            f"must be >= 1, got {self.checkpoint_every}",
        )
        for name in ("density", "width", "lr", "momentum", "weight_decay", "gamma",
                     "prune_fraction"):  # fmt: skip
            v = getattr(self, name)
            _check(math.isfinite(v), name, "must be a finite number")
            _check(abs(v) <= FLOAT32_MAX, name, f"must be at most {FLOAT32_MAX:.3g}, got {v:g}")
        _check(
            SEED_RANGE[0] <= self.seed <= SEED_RANGE[1],
            "seed",
            f"must be a 64-bit integer, in {SEED_RANGE[0]}..{SEED_RANGE[1]}, got {self.seed}",
        )
        dense = pruner(method).when == "never"
        if dense and ablate != "none":
            raise ConfigError(
                f"--ablate {ablate} needs a pruning method; --method {method} is dense"
            )
        if dense:
            density = 1.0
        else:
            density = self.density
        return dataclasses.replace(
            self,
            model=model,
            dataset=dataset,
            method=method,
            scope=scope,
            ablate=ablate,
            budget=budget,
            device=device,
            precision=precision,
            density=density,
        )

    @property
    def model_tag(self) -> str:
        """The model in directory names: a spec `pkg.mod:factory` becomes `pkg.mod.factory`."""
        return self.model.replace(":", ".")

    @property
    def method_tag(self) -> str:
        """The method in directory names, with the settings that change what it keeps: `snip`;
        `snip-shuffle` when ablated, `ecs-union` for a union budget, `snip-layer` layer-wise."""
        return method_tag(self.method, self.budget, self.scope, self.ablate)

    @property
    def prunes(self) -> bool:
        """False for the dense method (`--method none`)."""
        return pruner(self.method).when != "never"

    @property
    def rounds(self) -> list[float]:
        """IMP: the density after each prune round (empty for one-shot methods)."""
        if pruner(self.method).when != "iterative":
            return []
        return imp_densities(self.density, self.prune_fraction)

    @property
    def total_epochs(self) -> int:
        """Epochs the run trains: `epochs`, plus (epochs - rewind_epoch) per IMP round."""
        return self.epochs + len(self.rounds) * (self.epochs - self.rewind_epoch)

    @property
    def prune_epoch(self) -> int:
        """Epochs trained before the mask is computed (0: prune at initialisation)."""
        if pruner(self.method).when == "warmup":
            return min(self.warmup_epochs, self.epochs)
        return 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, every field included."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of `to_dict`; unknown or mistyped fields raise `ConfigError` naming them."""
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        defaults = cls()
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            default = getattr(defaults, name)
            kwargs[name] = _coerce(name, value, default)
        return cls(**kwargs)

    def differences(self, other: RunConfig, ignore: tuple[str, ...] = ()) -> list[str]:
        """Names of fields whose values differ (for refusing a resume with another config)."""
        out = []
        for f in dataclasses.fields(self):
            if f.name in ignore or not f.compare:
                continue
            if getattr(self, f.name) != getattr(other, f.name):
                out.append(f.name)
        return out


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"--{name.replace('_', '-')} {message}")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Check a config.json value against the field's default type."""
    if name == "max_batches":
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ConfigError(f"config field {name!r} must be an integer or null, got {value!r}")
    if name == "extra":
        if isinstance(value, dict):
            return value
        raise ConfigError(f"config field {name!r} must be an object, got {value!r}")
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"config field {name!r} must be {type(default).__name__}, got {value!r}")
    return value


SWEEP_AXES = {"models": "model", "datasets": "dataset", "methods": "method",
              "densities": "density", "ablations": "ablate", "seeds": "seed"}  # fmt: skip
"""A sweep's grid axes -> the RunConfig field each varies (`ecs sweep --methods`, `[grid]`)."""
SWEEP_AXIS_TYPES = {axis: type(getattr(RunConfig(), name)) for axis, name in SWEEP_AXES.items()}
"""A sweep's grid axes -> the type of their values (str, float, int)."""


def method_tag(
    method: str, budget: str = "exact", scope: str = "global", ablate: str = "none"
) -> str:
    """`RunConfig.method_tag` from its parts (a run's RunInfo has them too): `snip`,
    `ecs-union`, `snip-layer`, `snip-shuffle`. A method no longer registered keeps its name."""
    tag = method
    spec = PRUNERS.get(method)
    if spec is not None and budget == "union" and "union" in spec.budgets:
        tag += "-union"
    if spec is not None and scope == "layer" and spec.when != "never":
        tag += "-layer"
    return tag if ablate == "none" else f"{tag}-{ablate}"
