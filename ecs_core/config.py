"""Run configuration: one frozen dataclass; each field that is an `ecs run` option is declared
there once, with `option(default, help, ...)` (see `ecs_core/options.py`).

`ecs run`'s options, the app's form and the command line that reproduces a run are all made
from these fields; the app builds the same object. `validate()` checks every field against its
declaration, then the rules across fields, turning every bad value a user can type into a
`ConfigError` naming the option and the valid values, before anything is created on disk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ecs_core.names import ConfigError, canonical_name
from ecs_core.options import option, options
from ecs_core.registry import DATASETS, MODELS, PRUNERS, pruner
from ecs_core.rounds import imp_densities

__all__ = ["ConfigError", "RunConfig", "canonical_name", "check_model_spec"]


INSTALL_EXTRA = "pip install 'ecs-tui[export]'"
"""What installs the optional libraries: ONNX export, figures (matplotlib), TensorBoard."""
SCOPES = ("auto", "global", "layer")
"""auto: layer for --structure channel (Torch-Pruning's own default, global_pruning=False),
global otherwise; a validated config holds global or layer (`_distribution`)."""
DISTRIBUTIONS = ("auto", "global", "uniform", "erk", "er")
"""Per-layer budgets (`prune/distribution.py`); auto: global, or erk for SET and RigL."""
SCOPE_OF = {"global": "global", "uniform": "layer"}
"""The distributions that are a thresholding scope of `mask_from_scores`, and which."""
ABLATIONS = ("none", "shuffle", "reinit", "invert")
STRUCTURES = ("weight", "channel")
"""What pruning removes: single weights, or whole groups of coupled channels (`prune.channels`)."""
BUDGETS = ("exact", "union")
IMP_OPTIMIZERS = ("fresh", "rewound")
"""IMP's optimizer at a rewind: fresh (momentum 0, as open_lth's lottery runner builds a new
optimizer for each level) | rewound (its state at the rewind epoch, momentum buffers included)."""
KEEP_DENSE = ("auto", "none", "output")
"""Layers a method leaves dense: auto (the method's default: output for IMP, as open_lth's CIFAR
models; none for the others) | none | output (the last Conv2d/Linear, the classifier)."""
GRASP_SAMPLES = ("balanced", "batch")
"""GraSP's scoring samples: balanced (10 per class, as the original's `GraSP_fetch_data`) |
batch (the first training batches, as every other gradient method)."""
GRASP_LINEAR = ("xavier", "keep")
"""GraSP's linear layers while it scores: xavier (re-drawn with Xavier normal in a copy of the
model, as the original's `reinit`; the mask then applies to the model's own weights) | keep."""
SCORE_BN = ("train", "eval")
"""Batch norm while SNIP, ECS and GraSP score: train (batch statistics) | eval (running ones).
The methods that read it say so (`PrunerSpec.score_bn`); for the others it reads as train."""
BEFORE_OPTIONS = {
    "imp_optimizer": ("imp", "rewound"), "keep_dense": ("", "none"),
    "grasp_samples": ("grasp", "batch"), "grasp_linear": ("grasp", "keep"),
}  # fmt: skip
"""What a run did before each of these options existed: field -> (the method it applies to, ""
for every method; the value). A config.json without the field reads as this (`from_dict`), and
a run's name shows the field where it differs from it (`method_tag`), so a run from before
keeps its name and no new recipe takes an old directory's name."""
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
SEED_RANGE = (-(2**63), 2**63 - 1)
"""What torch's generators take, with room for the seed + 1 and seed + rank used in a run."""
NOT_RESULTS = ("device", "data_dir", "download", "runs_dir", "checkpoint_every", "tensorboard",
               "extra", "allow_collapse")  # fmt: skip
"""RunConfig fields that change nothing a run computes: where it runs, reads and writes, how
often it saves, its notes, whether it may go on past a collapsed layer (one that stops has
nothing to compare). Every other field, the seed aside, is part of its recipe
(`recipe_fields`): `ecs compare` averages over seeds only runs whose recipes are equal."""
AFTER_PRUNING = ("quantize", "bits", "quantize_bn", "finetune_epochs", "calib_batches")
"""Recipe fields that act only after the pruned model's test accuracy is taken (weight sharing,
fine-tuning the centroids, int8): they change a run's P+Q result, not its P result."""


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


def _model_name(name: str) -> str:
    """A registered model (any case), or the user's own `package.module:factory`."""
    return check_model_spec(name) if ":" in name else canonical_name(name, MODELS, "model")


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a run computes (plus where it writes).

    Each option's help is its doc; `label` puts it on the app's form; `bounds` and `choices`
    are what `validate` holds it to."""

    # --- what to train
    model: str = option(
        "vgg16",
        "{choices} (any case); or your own, package.module:factory with "
        "factory(num_classes, in_channels, width).",
        label="model", choices=MODELS, parse=_model_name,
    )  # fmt: skip
    dataset: str = option(
        "digits", "{choices}; digits is embedded (works offline).",
        label="dataset", choices=DATASETS,
    )  # fmt: skip
    width: float = option(
        1.0, "Channel multiplier (0.25 = quarter width, trains on a laptop).",
        label="width", bounds="(0, 8]",
    )  # fmt: skip

    # --- how to prune
    method: str = option(
        "ecs", "Pruning method: {choices} (none trains the dense model).",
        label="method", choices=PRUNERS,
    )  # fmt: skip
    density: float = option(
        0.05, "Fraction of prunable (conv + linear) weights kept, in (0, 1].",
        aliases=("--retain",), label="density", bounds="(0, 1]",
    )  # fmt: skip
    scope: str = option(
        "auto", "auto (layer for --structure channel, else global) | global: one threshold over "
        "all layers | layer: keep the density in each.",
        label="scope", choices=SCOPES,
    )  # fmt: skip
    distribution: str = option(
        "auto", "Per-layer budget: auto (global; erk for set, rigl; uniform for channels) | "
        "global (one threshold) | uniform (the density in every layer; --scope layer) | "
        "erk (Evci et al. 2020) | er. "
        "Part of the run's name unless it is the method's default.",
        label="distrib", choices=DISTRIBUTIONS,
    )  # fmt: skip
    distribution_from: str = option(
        "", "Each layer keeps as many weights as in this run's directory (its summary.json), "
        "rescaled to --density; the method picks which. Part of the run's name.",
        label="dist from",
    )  # fmt: skip
    structure: str = option(
        "weight", "weight: remove single weights | channel: remove whole groups of coupled "
        "channels, so the model becomes a smaller dense one that runs faster.",
        choices=STRUCTURES, noun="structure (--structure)",
    )  # fmt: skip
    budget: str = option(
        "exact", "ECS: exact (= density) | union (top-x by |w| union top-x by |g|: x..2x).",
        label="budget", choices=BUDGETS,
    )  # fmt: skip
    warmup_epochs: int = option(
        1, "Epochs trained before pruning, for methods that prune after training (ecs, "
        "magnitude).", label="warm-up", bounds=">= 0",
    )  # fmt: skip
    score_batches: int = option(
        1, "Batches whose gradients are summed to score connections (snip, ecs, grasp).",
        label="score bat", bounds=">= 1",
    )  # fmt: skip
    ablate: str = option(
        "none", "Sanity check: none | shuffle (each layer's mask permuted) | reinit (kept "
        "weights re-initialised) | invert (kept lowest scores). Part of the run's name.",
        label="ablate", choices=ABLATIONS, noun="ablation (--ablate)",
    )  # fmt: skip
    prune_iterations: int = option(
        100, "SynFlow: pruning rounds (density**(k/n) at round k).",
        label="rounds", bounds=">= 1",
    )  # fmt: skip
    prune_fraction: float = option(
        0.2, "IMP: fraction of the remaining weights removed per round (Frankle & Carbin: 0.2).",
        label="imp frac", bounds="(0, 1)",
    )  # fmt: skip
    rewind_epoch: int = option(
        0, "IMP: after each round the kept weights, optimizer and LR schedule go back to this "
        "epoch of the dense run (0 = initialisation, the lottery ticket).",
        label="rewind", bounds=">= 0",
    )  # fmt: skip
    imp_optimizer: str = option(
        "fresh", "IMP: the optimizer at each rewind: fresh (a new one, momentum 0, as open_lth) | "
        "rewound (its state at the rewind epoch, momentum included). Part of the run's name.",
        label="imp optim", choices=IMP_OPTIMIZERS, noun="IMP optimizer (--imp-optimizer)",
    )  # fmt: skip
    keep_dense: str = option(
        "auto", "Layers left 100% dense: auto (output for imp, as open_lth; none for the "
        "others) | none | output (the classifier: the last conv/linear layer). --density is "
        "then over the other layers. Part of the run's name.",
        label="dense", choices=KEEP_DENSE, noun="layer set (--keep-dense)",
    )  # fmt: skip
    grasp_samples: str = option(
        "balanced", "GraSP's scoring samples: balanced (10 per class, as the original) | batch "
        "(--score-batches training batches). Part of the run's name.",
        label="grasp set", choices=GRASP_SAMPLES, noun="sample set (--grasp-samples)",
    )  # fmt: skip
    grasp_linear: str = option(
        "xavier", "GraSP's linear layers while it scores: xavier (re-drawn, Xavier normal, in a "
        "copy of the model, as the original) | keep (the model's own). Part of the run's name.",
        label="grasp fc", choices=GRASP_LINEAR, noun="linear-layer choice (--grasp-linear)",
    )  # fmt: skip
    score_bn: str = option(
        "train", "Batch norm while snip, ecs and grasp score: train (batch statistics) | eval "
        "(running statistics, as Synaptic-Flow's prune loop). Part of the run's name.",
        label="score bn", choices=SCORE_BN, noun="batch-norm mode (--score-bn)",
    )  # fmt: skip
    dst_interval: int = option(
        100, "SET, RigL: optimizer steps between mask updates (Evci et al.: 100).",
        label="dst every", bounds=">= 1",
    )  # fmt: skip
    dst_drop: float = option(
        0.3, "SET, RigL: fraction of each layer's kept weights moved at the first update, "
        "decaying to 0 by a cosine (Evci et al.: 0.3).", label="dst drop", bounds="(0, 1)",
    )  # fmt: skip
    dst_end: float = option(
        0.75, "SET, RigL: fraction of the training steps after which the mask stays fixed "
        "(Evci et al.: 0.75).", label="dst end", bounds="(0, 1]",
    )  # fmt: skip
    allow_collapse: bool = option(
        False, "Go on even if pruning leaves a layer with no weights at all."
    )

    # --- how to train (the original's defaults)
    epochs: int = option(
        70, "Total epochs, warm-up included (IMP: per round).", label="epochs", bounds=">= 0"
    )
    batch_size: int = option(
        128, "Images per optimizer step.", aliases=("--batchsize",), label="batch",
        bounds=">= 1",
    )  # fmt: skip
    lr: float = option(0.1, "SGD learning rate at the start.", label="lr", bounds="> 0")
    momentum: float = option(0.9, "SGD momentum.", bounds="[0, 1)")
    weight_decay: float = option(
        5e-4, "L2 weight decay (added by SGD).", aliases=("--weightdecay",), bounds=">= 0"
    )
    step_size: int = option(
        20, "StepLR: multiply the learning rate by gamma every this many epochs.",
        aliases=("--step",), bounds=">= 1",
    )  # fmt: skip
    gamma: float = option(0.1, "StepLR decay factor.", bounds="(0, 1]")
    max_batches: int | None = option(
        None, "Cap on batches per epoch (smoke runs); unset: the whole training set.",
        label="max batch", bounds=">= 1", blank="all",
    )  # fmt: skip
    seed: int = option(
        0, "Seeds model init, shuffling, augmentation and pruning; same seed, same run on CPU.",
        label="seed", bounds=f"{SEED_RANGE[0]}..{SEED_RANGE[1]}", kind="a 64-bit integer",
    )  # fmt: skip
    device: str = option(
        "auto", "auto (cuda when available) | cpu | cuda.", label="device", choices=DEVICES
    )
    precision: str = option(
        "auto", "auto (bf16 autocast on CUDA, fp32 on the CPU) | fp32 | bf16 (fast with "
        "AVX512-BF16).", label="precision", choices=PRECISIONS,
    )  # fmt: skip

    # --- quantization and export
    quantize: bool = option(
        True, "After training a pruned model: k-means weight sharing, int8, compressed export.",
        label="quantize",
    )  # fmt: skip
    bits: int = option(
        5, "Weight sharing: 2**bits clusters per layer (5 -> 32, as the original report).",
        label="bits", bounds="1..8",
    )  # fmt: skip
    quantize_bn: bool = option(False, "Also share batch-norm weights (the original did).")
    finetune_epochs: int = option(
        0, "Epochs of centroid fine-tuning after weight sharing (Deep Compression).",
        bounds=">= 0",
    )  # fmt: skip
    calib_batches: int = option(
        8, "Batches used to calibrate the int8 inference model.", bounds=">= 1"
    )
    latency: bool = option(
        True, "At the end, time the dense, final fp32 and int8 models on this CPU (batch 1 and "
        "64, one thread; seconds at width 0.25, about a minute at full width); a resume may "
        "change it.", compare=False,
    )  # fmt: skip

    # --- where
    data_dir: str = option(
        "./data", "Where datasets live (and are downloaded to, when the network allows)."
    )
    download: bool = option(
        True, "Download a missing dataset (CIFAR, Fashion-MNIST) when the network allows."
    )
    runs_dir: str = option("./runs", "Parent folder of run directories.")
    checkpoint_every: int = option(
        1, "Write a resumable checkpoint every this many epochs.", bounds=">= 1"
    )
    tensorboard: str = option(
        "", "Also write TensorBoard logs here (a sweep: one sub-folder per cell); a resume may "
        "change it.", compare=False, label="tb logs",
    )  # fmt: skip
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Free-form notes carried into config.json (never read by the engine; no option)."""

    def validate(self) -> RunConfig:
        """Return a copy with canonical names; raise `ConfigError` on the first bad value:
        names first, then numbers (each against its declaration), then the rules across
        fields."""
        fields = list(options(type(self)))
        named = {f.name: o.check(f.name, getattr(self, f.name))
                 for f, o in fields if o.choices is not None}  # fmt: skip
        for f, o in fields:
            if o.choices is None:
                o.check(f.name, getattr(self, f.name))
        spec = pruner(named["method"])
        if spec.when == "iterative" and not self.rewind_epoch < self.epochs:
            raise ConfigError(
                f"--rewind-epoch must be below --epochs ({self.epochs}): each round trains "
                f"epochs rewind-epoch+1..epochs, got {self.rewind_epoch}"
            )
        dense = spec.when == "never"
        if dense and named["ablate"] != "none":
            raise ConfigError(
                f"--ablate {named['ablate']} needs a pruning method; --method {spec.name} is dense"
            )
        channel = named["structure"] == "channel" and not dense
        named.update(_distribution(named, spec.grow != "", self.distribution_from, channel))
        if named["structure"] == "channel" and not dense:
            if spec.channels is None:
                raise ConfigError(
                    f"--method {spec.name} has no channel form; use --structure weight"
                )
            if self.distribution_from or named["distribution"] not in ("auto", "global"):
                raise ConfigError(
                    "--structure channel spreads channels by --scope global|layer; leave out "
                    "--distribution and --distribution-from"
                )
        named.update(_method_choices(named, named["method"]))
        if spec.grow and dense_layers(spec.name, named["keep_dense"], "weight") != "none":
            raise ConfigError(
                f"--method {spec.name} moves weights within every layer: leave out --keep-dense"
            )
        if named["structure"] == "channel" and self.keep_dense not in ("auto", "none"):
            raise ConfigError(
                "--structure channel never removes the classes: leave out --keep-dense"
            )
        if dense:  # nothing to spread: one dense run whatever they say (one cell in a sweep)
            named.update(distribution="auto", scope="global", structure="weight", density=1.0)
        return dataclasses.replace(self, **named)

    @property
    def model_tag(self) -> str:
        """The model in directory names: a spec `pkg.mod:factory` becomes `pkg.mod.factory`."""
        return self.model.replace(":", ".")

    @property
    def method_tag(self) -> str:
        """The method in directory names, with the settings that change what it keeps: `snip`;
        `snip-shuffle` when ablated, `ecs-union` for a union budget, `snip-layer` layer-wise."""
        return method_tag(
            self.method, self.budget, self.scope, self.ablate, self.distribution,
            self.distribution_from, self.structure, self.choices,
        )  # fmt: skip

    @property
    def choices(self) -> dict[str, str]:
        """The method's named choices (`BEFORE_OPTIONS`' fields, and --score-bn)."""
        return {name: getattr(self, name) for name in (*BEFORE_OPTIONS, "score_bn")}

    @property
    def dense_layers(self) -> str:
        """--keep-dense with auto resolved: none | output."""
        return dense_layers(self.method, self.keep_dense, self.structure)

    @property
    def spread(self) -> str:
        """How the density is spread over layers: global | uniform | erk | er | from."""
        return spread(self.method, self.scope, self.distribution, self.distribution_from)

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
        kwargs.update(before_options(data))
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


def recipe_fields() -> tuple[str, ...]:
    """The fields of RunConfig that change a run's results, the seed aside: all but NOT_RESULTS,
    in declaration order (a field added to RunConfig is part of the recipe unless listed there).
    """
    return tuple(f.name for f in dataclasses.fields(RunConfig)
                 if f.name != "seed" and f.name not in NOT_RESULTS)  # fmt: skip


def before_options(data: dict[str, Any]) -> dict[str, str]:
    """The fields of `BEFORE_OPTIONS` that the config.json `data` lacks, as the run that wrote
    it behaved: an IMP run from before rewound its momentum and pruned the output layer."""
    method = data.get("method")
    method = method if isinstance(method, str) else ""
    missing = {name: before for name, (only, before) in BEFORE_OPTIONS.items()
               if name not in data and only in ("", method)}  # fmt: skip
    if not missing:
        return {}
    named = {name: data.get(name, getattr(RunConfig(), name)) for name in BEFORE_OPTIONS}
    named["structure"] = data.get("structure", "weight")
    return {k: v for k, v in _method_choices({**named, **missing}, method).items() if k in missing}


def _method_choices(named: dict[str, Any], method: str) -> dict[str, str]:
    """The method's choices in their canonical form (so equal recipes read equal): a choice
    for another method (--imp-optimizer for snip, --score-bn for synflow: `PrunerSpec.score_bn`)
    reads as its default; --keep-dense keeps auto for the method's own default, as
    --distribution does."""
    names = (*BEFORE_OPTIONS, "score_bn")
    fields = {f.name: f.default for f in dataclasses.fields(RunConfig) if f.name in names}
    out = {}
    for name, (only, _) in BEFORE_OPTIONS.items():
        value = named[name]
        if only and method != only:
            value = fields[name]
        out[name] = value
    if out["keep_dense"] == _default_dense(method, named.get("structure", "weight")):
        out["keep_dense"] = "auto"
    if "score_bn" in named:
        spec = PRUNERS.get(method)
        out["score_bn"] = named["score_bn"] if spec is None or spec.score_bn else fields["score_bn"]
    return out


def _default_dense(method: str, structure: str) -> str:
    """What --keep-dense auto keeps dense: the output layer for IMP pruning weights (as
    open_lth's CIFAR VGG and ResNet: `pruning_layers_to_ignore`), none for the others (a
    channel run never removes the classes, and the output layer's inputs go with their
    channels)."""
    return "output" if method == "imp" and structure == "weight" else "none"


def dense_layers(method: str, keep_dense: str, structure: str) -> str:
    """--keep-dense with auto resolved for `method` and `structure`: none | output."""
    return _default_dense(method, structure) if keep_dense == "auto" else keep_dense


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Check a config.json value against the field's default type."""
    if default is None:  # an optional number (max_batches)
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
              "distributions": "distribution", "structures": "structure",
              "densities": "density", "ablations": "ablate", "seeds": "seed"}  # fmt: skip
"""A sweep's grid axes -> the RunConfig field each varies (`ecs sweep --methods`, `[grid]`)."""
SWEEP_AXIS_TYPES = {axis: type(getattr(RunConfig(), name)) for axis, name in SWEEP_AXES.items()}
"""A sweep's grid axes -> the type of their values (str, float, int)."""


def method_tag(
    method: str, budget: str = "exact", scope: str = "global", ablate: str = "none",
    distribution: str = "auto", distribution_from: str = "", structure: str = "weight",
    choices: dict[str, Any] | None = None,
) -> str:  # fmt: skip
    """`RunConfig.method_tag` from its parts (a run's RunInfo has them too): `snip`,
    `ecs-union`, `snip-layer`, `snip-erk` (a distribution not the method's default),
    `snip-from-RUN`, `snip-channel`, `snip-shuffle`; the method's choices where they differ
    from what runs did before them (`BEFORE_OPTIONS`): `imp-fresh-dense-output` (IMP's
    defaults), `grasp-balanced`, `snip-dense-output`, `snip-bn-eval`. A method no longer
    registered keeps its name."""
    tag = method
    spec = PRUNERS.get(method)
    prunes = spec is not None and spec.when != "never"
    if prunes:
        tag += "".join(f"-{t}" for t in choice_tags(method, choices or {}, structure))
    if spec is not None and budget == "union" and "union" in spec.budgets:
        tag += "-union"
    if prunes and scope == "layer":
        tag += "-layer"
    elif prunes and distribution not in ("auto", "uniform", _default_distribution(spec)):
        tag += f"-{distribution}"  # (a validated config keeps the default as auto)
    if prunes and distribution_from:
        tag += "-from-" + distribution_from.rstrip("/\\").replace("\\", "/").split("/")[-1]
    if spec is not None and structure == "channel" and spec.when != "never":
        tag += "-channel"
    return tag if ablate == "none" else f"{tag}-{ablate}"


def choice_tags(method: str, choices: dict[str, Any], structure: str = "weight") -> list[str]:
    """`fresh`, `balanced`, `dense-output`, `bn-eval`: each of the method's choices unlike the
    runs before it (a choice missing from `choices` is what they did): the run's name and the
    compare row's label both say them."""
    tags = []
    for name, (only, before) in BEFORE_OPTIONS.items():
        value = choices.get(name, before)
        if name == "keep_dense":
            value = dense_layers(method, value, structure)
            if value != before:
                tags.append(f"dense-{value}")
        elif only == method and value != before:
            tags.append(value)
    if choices.get("score_bn", "train") != "train":
        tags.append(f"bn-{choices['score_bn']}")
    return tags


def _default_distribution(spec: Any) -> str:
    """What `--distribution auto` is for a method: erk for dynamic sparse training (as the
    papers), the one global threshold for the others."""
    return "erk" if spec.grow else "global"


def spread_word(spread: str) -> str:
    """The word a line shows for a spread: global | layer (uniform, as --scope says it) | erk |
    er | from."""
    return SCOPE_OF.get(spread, spread)


def spread(method: str, scope: str, distribution: str, distribution_from: str = "") -> str:
    """How a (validated) config spreads the density over layers: global | uniform | erk | er |
    from (`--distribution-from`). config.json keeps auto for the method's own default."""
    if distribution_from:
        return "from"
    if scope == "layer":
        return "uniform"
    spec = PRUNERS.get(method)
    if distribution == "auto":
        return _default_distribution(spec) if spec is not None else "global"
    return distribution


def _distribution(
    named: dict[str, str], dynamic: bool, source: str, channel: bool = False
) -> dict[str, str]:
    """distribution and scope made to agree: `--scope layer` is the older spelling of
    `--distribution uniform` (kept: every run before it, its name and config.json say scope);
    the method's own default is kept as auto, so a run that does not choose reads (and pools in
    `ecs compare`'s recipes) as every run from before the option; `--distribution-from` takes
    the place of both. `--scope auto` becomes layer for a `channel` run that names no
    distribution (every layer keeps the same fraction of its channels, as Torch-Pruning does by
    default: a global ranking keeps the few-weight, MAC-heavy early layers whole and the model
    barely faster), else global; so config.json always holds global or layer, and a channel run
    saved before auto (global, its name without -layer) still means global."""
    dist, scope = named["distribution"], named["scope"]
    if scope == "auto":
        scope = "layer" if channel and dist == "auto" and not source else "global"
    if source:
        if dist != "auto" or scope != "global":
            raise ConfigError(
                "--distribution-from sets every layer's count itself: leave out --distribution "
                "and --scope"
            )
        return {"distribution": "auto", "scope": "global"}
    if scope == "layer" and dist not in ("auto", "uniform"):
        raise ConfigError(
            f"--scope layer is --distribution uniform; it cannot go with --distribution {dist}"
        )
    if dist == "uniform":
        scope = "layer"
    if dist in ("uniform", "erk" if dynamic else "global"):
        dist = "auto"
    return {"distribution": dist, "scope": scope}
