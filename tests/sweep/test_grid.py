"""The grid: cells and their names, grid files, option precedence, `--print-commands` lines."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ecs_core.config import ConfigError, RunConfig
from ecs_core.sweep import Block, Grid, SweepError, make_cells, open_run_dir, read_grid_file
from ecs_core.sweep.grid import cell_name
from ecs_tui.cli import app
from ecs_tui.commands.run import build_config


def test_cells_are_the_product_with_fixed_names(tmp_path: Path) -> None:
    """One cell per combination, named from the config, under runs_dir/name; in a stable order."""
    grid = Grid(methods=("snip", "ECS"), densities=(0.2, 0.05), seeds=(0, 1))
    cells = make_cells(grid, RunConfig(width=0.125), tmp_path, "t")
    assert [c.name for c in cells[:3]] == [
        "vgg16-digits-snip-d0.2-s0", "vgg16-digits-snip-d0.2-s1", "vgg16-digits-snip-d0.05-s0",
    ]  # fmt: skip
    assert len(cells) == 8 and len({c.name for c in cells}) == 8
    assert all(c.path == tmp_path / "t" / c.name for c in cells)
    assert all(c.config.runs_dir == str(tmp_path / "t") for c in cells)
    assert {c.config.method for c in cells} == {"snip", "ecs"}  # canonical names
    assert cells == make_cells(grid, RunConfig(width=0.125), tmp_path, "t")


def test_dense_cells_collapse_to_one_per_seed(tmp_path: Path) -> None:
    """Method none trains at density 1 whatever the density axis says: one cell, not three."""
    grid = Grid(methods=("none", "snip"), densities=(0.2, 0.1, 0.05))
    names = [c.name for c in make_cells(grid, RunConfig(), tmp_path, "t")]
    assert names.count("vgg16-digits-none-d1-s0") == 1 and len(names) == 4


@pytest.mark.parametrize("bad", [Grid(methods=("prune-it",)), Grid(densities=(0.0,))])
def test_bad_axis_values_are_config_errors(tmp_path: Path, bad: Grid) -> None:
    with pytest.raises(ConfigError):
        make_cells(bad, RunConfig(), tmp_path, "t")


@pytest.mark.parametrize("name", ["", "..", "a/b"])
def test_sweep_name_must_be_a_plain_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(SweepError, match="plain folder"):
        make_cells(Grid(), RunConfig(), tmp_path, name)


def test_grid_file_is_read(grid_file: Path) -> None:
    file = read_grid_file(grid_file)
    assert file.name == "table1" and file.jobs is None
    (block,) = file.blocks
    assert block == Block(Grid(methods=("snip", "random"), densities=(0.2, 0.05), seeds=(0, 1)))
    assert file.run == {"width": 0.25, "epochs": 5, "quantize": False}


BLOCKS = """
name = "study"
jobs = 2
[run]
epochs = 3
[[grid]]
methods = ["none", "snip"]
densities = [0.1, 0.05]
[[grid]]
methods = ["ecs"]
densities = [0.1, 0.05]
run = {budget = "union", epochs = 4}
[[grid]]
methods = ["ecs"]
densities = [0.05]
[[grid]]
methods = ["snip"]
densities = [0.05]
ablations = ["shuffle", "reinit"]
seeds = [0, 1]
"""


def test_grid_blocks_are_a_union_of_products_with_their_own_options(tmp_path: Path) -> None:
    """[[grid]] blocks: each its own product and `run` options; names tell the variants apart
    (ecs-union, snip-shuffle), the dense cell appears once, jobs is read."""
    path = tmp_path / "g.toml"
    path.write_text(BLOCKS)
    file = read_grid_file(path)
    assert file.jobs == 2 and len(file.blocks) == 4
    base = RunConfig.from_dict(file.run)
    cells = make_cells(file.blocks, base, tmp_path, file.name or "x")
    names = [c.name for c in cells]
    assert names == [
        "vgg16-digits-none-d1-s0", "vgg16-digits-snip-d0.1-s0", "vgg16-digits-snip-d0.05-s0",
        "vgg16-digits-ecs-union-d0.1-s0", "vgg16-digits-ecs-union-d0.05-s0",
        "vgg16-digits-ecs-d0.05-s0",
        "vgg16-digits-snip-shuffle-d0.05-s0", "vgg16-digits-snip-shuffle-d0.05-s1",
        "vgg16-digits-snip-reinit-d0.05-s0", "vgg16-digits-snip-reinit-d0.05-s1",
    ]  # fmt: skip
    by_name = {c.name: c.config for c in cells}
    union = by_name["vgg16-digits-ecs-union-d0.1-s0"]
    assert (union.budget, union.epochs) == ("union", 4)  # the block's options
    exact = by_name["vgg16-digits-ecs-d0.05-s0"]
    assert (exact.budget, exact.epochs) == ("exact", 3)
    assert by_name["vgg16-digits-snip-reinit-d0.05-s1"].ablate == "reinit"
    # options typed on the command line win over a block's own (keep)
    typed = make_cells(file.blocks, dataclasses.replace(base, epochs=2), tmp_path, "y",
                       keep={"epochs"})  # fmt: skip
    assert {c.config.epochs for c in typed} == {2}


def test_two_runs_that_would_share_a_directory_are_refused(tmp_path: Path) -> None:
    """Blocks that differ only in a setting the name does not show (here, epochs) would write
    one directory twice: refused, naming the setting."""
    blocks = [Block(Grid(methods=("snip",))), Block(Grid(methods=("snip",)), {"epochs": 9})]
    with pytest.raises(SweepError, match="differ in epochs"):
        make_cells(blocks, RunConfig(), tmp_path, "t")


def test_run_names_show_union_budget_and_layer_scope() -> None:
    assert RunConfig(method="ecs", budget="union").validate().method_tag == "ecs-union"
    assert RunConfig(method="snip", budget="union").validate().method_tag == "snip"  # exact only
    assert RunConfig(method="snip", scope="layer").validate().method_tag == "snip-layer"
    tag = RunConfig(method="ecs", budget="union", scope="layer", ablate="shuffle")
    assert tag.validate().method_tag == "ecs-union-layer-shuffle"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grid]\nmethods = 'snip'\nmodel = ['vgg16']\n", "unknown axis model"),
        ("[run]\nmethod = 'snip'\n", "belong in \\[grid\\]"),
        ("[run]\nepochs = 'many'\n", "epochs"),
        ("[run]\nepoch = 3\n", "unknown config field"),
        ("[grid\n", "not valid TOML"),
        ("title = 'x'\n", "unknown key"),
        ("jobs = 0\n[grid]\n", "jobs must be a whole number"),
        ("[[grid]]\nmethods = ['snip']\nrun = {epoch = 3}\n", "run: unknown config field"),
        ("[[grid]]\nmethods = ['snip']\n[[grid]]\nrun = {seed = 3}\n", "seed belong in"),
        ("[grid]\nseeds = []\n", "seeds is empty"),
    ],
)
def test_bad_grid_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(SweepError, match=message):
        read_grid_file(path)


def _parse_run_line(line: str) -> tuple[RunConfig, str]:
    """An `ecs run ...` line -> (the config `ecs run` would build from it, its --run-dir)."""
    argv = shlex.split(line)
    assert argv[:2] == ["ecs", "run"]
    args = argv[2:]
    i = args.index("--run-dir")
    run_dir = args[i + 1]
    run_cmd = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    if "run_dir" not in {p.name for p in run_cmd.params}:
        del args[i : i + 2]  # `ecs run --run-dir` is the lead's to add; parse the rest
    params = run_cmd.make_context("run", args).params
    for key in ("resume", "json_out", "nproc", "run_dir"):
        params.pop(key, None)
    return build_config(**params), run_dir


def test_print_commands_round_trip_and_options_beat_the_grid_file(
    runner: CliRunner, grid_file: Path, tmp_path: Path
) -> None:
    """Each line is an `ecs run` that builds exactly its cell's config; typed options win over
    the file ([run] epochs = 5, but --epochs 3 is typed); nothing is written."""
    runs = tmp_path / "runs"
    result = runner.invoke(
        app, ["sweep", "--grid", str(grid_file), "--epochs", "3", "--seeds", "7",
              "--runs-dir", str(runs), "--print-commands"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 4  # 2 methods x 2 densities x the one typed seed
    grid = Grid(methods=("snip", "random"), densities=(0.2, 0.05), seeds=(7,))
    base = RunConfig(width=0.25, epochs=3, quantize=False)
    cells = make_cells(grid, base, runs, "table1")
    for line, cell in zip(lines, cells, strict=True):
        config, run_dir = _parse_run_line(line)
        assert config == cell.config
        assert Path(run_dir) == cell.path
    assert not runs.exists()


def test_axes_also_take_ecs_runs_singular_spelling(runner: CliRunner, tmp_path: Path) -> None:
    """`ecs sweep --dataset digits --method snip --density 0.1 --seed 1 --model vgg16` works as
    `ecs run` spells them (a one-value axis each; a comma list too)."""
    result = runner.invoke(app, [
        "sweep", "--model", "vgg16", "--dataset", "digits", "--method", "snip,random",
        "--density", "0.1", "--seed", "1", "--runs-dir", str(tmp_path), "--print-commands",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    configs = [_parse_run_line(line)[0] for line in result.output.strip().splitlines()]
    assert [(c.method, c.density, c.seed, c.dataset) for c in configs] == [
        ("snip", 0.1, 1, "digits"), ("random", 0.1, 1, "digits")]  # fmt: skip


DISTRIBUTIONS = """
[[grid]]
methods = ["none", "snip", "rigl"]
distributions = ["auto", "global", "erk", "uniform"]
[[grid]]
methods = ["snip", "random"]
structures = ["weight", "channel"]
"""


def test_distributions_and_structures_are_axes_whose_cells_never_collide(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A grid file's `distributions` and `structures` axes (issue 28, 26): every cell a name of
    its own, a method's default distribution (global; erk for RigL) its plain name, the dense run
    once; `ecs sweep --distributions` on the command line makes the same cells."""
    path = tmp_path / "g.toml"
    path.write_text(DISTRIBUTIONS)
    cells = make_cells(read_grid_file(path).blocks, RunConfig(), tmp_path, "t")
    got = {c.name.removeprefix("vgg16-digits-"): c.config for c in cells}
    assert list(got) == [
        "none-d1-s0", "snip-d0.05-s0", "snip-erk-d0.05-s0", "snip-layer-d0.05-s0",
        "rigl-d0.05-s0", "rigl-global-d0.05-s0", "rigl-layer-d0.05-s0",
        "snip-layer-channel-d0.05-s0", "random-d0.05-s0", "random-layer-channel-d0.05-s0",
    ]  # fmt: skip
    assert [(c.spread, c.structure) for c in got.values()] == [
        ("global", "weight"), ("global", "weight"), ("erk", "weight"), ("uniform", "weight"),
        ("erk", "weight"), ("global", "weight"), ("uniform", "weight"),
        ("uniform", "channel"), ("global", "weight"), ("uniform", "channel"),
    ]  # fmt: skip
    result = runner.invoke(app, [
        "sweep", "--methods", "snip,rigl", "--distributions", "global,erk", "--structure",
        "weight", "--runs-dir", str(tmp_path), "--print-commands",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    configs = [_parse_run_line(line)[0] for line in result.output.strip().splitlines()]
    assert [cell_name(c) for c in configs] == [
        f"vgg16-digits-{m}-d0.05-s0" for m in ("snip", "snip-erk", "rigl-global", "rigl")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--densities", "0.2,half"], "comma-separated"),
        (["--methods", "snip,pruneit"], "unknown method 'pruneit'"),
        (["--seeds", ","], "at least one value"),
        (["--grid", "missing.toml"], "cannot read grid file"),
        (["--resume", "runs/x"], "ecs sweep does not take --resume"),
        (["--compression", "20", "--json"], "does not take --compression, --json"),
        (["--retain", "0.1"], "does not take --density"),  # `ecs run`'s other spelling
        (["--distributions", "erk,lognormal"], "unknown distribution 'lognormal'"),
        (["--structures", "channel", "--methods", "rigl"], "rigl has no channel form"),
        (["--no-such-option"], "No such option: --no-such-option"),
        (["--epochs", "many"], "Invalid value for '--epochs'"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["sweep", *args, "--runs-dir", str(tmp_path), "--print-commands"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_every_ecs_run_option_reaches_the_cells(runner: CliRunner, tmp_path: Path) -> None:
    """The options after `ecs sweep` are `ecs run`'s own, parsed by its command: any of them
    (here the hidden --prunetype and a --no- flag) lands in every cell's config."""
    result = runner.invoke(app, [
        "sweep", "--methods", "snip,ecs", "--prunetype", "True", "--no-quantize", "--lr", "0.05",
        "--runs-dir", str(tmp_path), "--print-commands",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    configs = [_parse_run_line(line)[0] for line in result.output.strip().splitlines()]
    assert [(c.method, c.scope, c.quantize, c.lr) for c in configs] == [
        ("snip", "layer", False, 0.05), ("ecs", "layer", False, 0.05)]  # fmt: skip
    help_text = runner.invoke(app, ["sweep", "--help"]).output
    assert "Every other `ecs run` option applies to every cell" in " ".join(help_text.split())


def test_run_dir_new_then_resumable_then_refused_with_other_settings(tmp_path: Path) -> None:
    config = RunConfig(width=0.125, epochs=1).validate()
    path = tmp_path / "cell"
    store, resume = open_run_dir(path, config)  # type: ignore[misc]
    assert (path / "config.json").is_file() and resume is False
    store, resume = open_run_dir(path, config)  # type: ignore[misc]
    assert resume is True  # config.json but no summary: a run that was killed
    store.write_summary({"status": "finished"})
    assert open_run_dir(path, config) is None
    with pytest.raises(SweepError, match="differs in: epochs"):
        open_run_dir(path, RunConfig(width=0.125, epochs=2).validate())
    # where it runs is not what it computes: another device or runs_dir is the same cell
    assert open_run_dir(path, RunConfig(width=0.125, epochs=1, device="cpu").validate()) is None


def test_the_shipped_original_table_grid(tmp_path: Path) -> None:
    """sweeps/original-table.toml reads, and makes the original report's 126 runs."""
    path = Path(__file__).parents[2] / "sweeps" / "original-table.toml"
    file = read_grid_file(path)
    base = RunConfig.from_dict(file.run)
    cells = make_cells(file.blocks, base, tmp_path, file.name or "x")
    assert file.name == "original-table" and len(cells) == 3 * 2 * (2 * 3 + 1) * 3
    configs = [c.config for c in cells]
    assert {(c.epochs, c.lr, c.budget, c.bits, c.quantize) for c in configs} == {
        (300, 0.05, "union", 5, True)
    }
    assert {c.density for c in configs if c.method == "none"} == {1.0}


def test_the_shipped_study_grid(tmp_path: Path) -> None:
    """sweeps/pai-study.toml reads and makes the README's 216 cells, the new blocks included:
    RigL and SET at ERK (their default) and random at ERK, 15 cells each."""
    path = Path(__file__).parents[2] / "sweeps" / "pai-study.toml"
    file = read_grid_file(path)
    cells = make_cells(file.blocks, RunConfig.from_dict(file.run), tmp_path, file.name or "x")
    assert file.name == "pai-study" and len(cells) == 216
    names = [c.name for c in cells]
    for tag in ("-rigl-", "-set-", "-random-erk-"):
        assert sum(tag in n for n in names) == 15, tag
    assert {c.config.spread for c in cells if c.config.method in ("rigl", "set")} == {"erk"}


def test_a_listed_run_spells_its_method_as_its_directory_does(tmp_path: Path) -> None:
    """`RunInfo.method_tag` (the app's Runs tab) and `RunConfig.method_tag` (directory names)
    are one function: a union-budget ECS run is `ecs-union` in both."""
    from ecs_core.stats import run_info

    config = RunConfig(method="ecs", budget="union", scope="layer", ablate="reinit").validate()
    path = tmp_path / "r"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config.to_dict()))
    assert run_info(path).method_tag == config.method_tag == "ecs-union-layer-reinit"


def test_the_shipped_channel_study_spreads_each_cell_layer_by_layer(runner: CliRunner) -> None:
    """sweeps/channel-study.toml (issue 26's speed axis): 90 channel cells, --scope auto read
    per cell (layer, as `ecs run --structure channel` does), in the study's sweep folder; the
    same from the command line's --structure axis."""
    path = Path(__file__).parents[2] / "sweeps" / "channel-study.toml"
    lines = runner.invoke(app, ["sweep", "--grid", str(path), "--print-commands"])
    assert lines.exit_code == 0, lines.output
    configs = [_parse_run_line(line)[0] for line in lines.output.strip().splitlines()]
    assert len(configs) == 90 and {(c.structure, c.spread) for c in configs} == {
        ("channel", "uniform")
    }
    assert all(cell_name(c).endswith(("-layer-channel-d0.2-s0", "-layer-channel-d0.1-s0",
               "-layer-channel-d0.05-s0", "-layer-channel-d0.02-s0", "-layer-channel-d0.01-s0",
               "-layer-channel-d0.2-s1", "-layer-channel-d0.1-s1", "-layer-channel-d0.05-s1",
               "-layer-channel-d0.02-s1", "-layer-channel-d0.01-s1", "-layer-channel-d0.2-s2",
               "-layer-channel-d0.1-s2", "-layer-channel-d0.05-s2", "-layer-channel-d0.02-s2",
               "-layer-channel-d0.01-s2")) for c in configs)  # fmt: skip
    axis = runner.invoke(app, ["sweep", "--structures", "weight,channel", "--method", "snip",
                               "--print-commands"])  # fmt: skip
    assert axis.exit_code == 0, axis.output
    spread = [_parse_run_line(line)[0].spread for line in axis.output.strip().splitlines()]
    assert spread == ["global", "uniform"]
