"""`ecs compare` data and text over hand-written run directories; `ecs runs` never crashes."""

from __future__ import annotations

import csv
import io
import json
import statistics

import pytest

from ecs_core.stats import compare_runs, find_runs, run_info
from ecs_tui.cli import app


def test_mean_std_over_three_seeds(fake_runs):
    table = compare_runs([fake_runs])
    snip = table.cell("digits", "VGG16", "SNIP", 0.1)
    assert snip.n == 3 and snip.seeds == [0, 1, 2]
    assert snip.mean == pytest.approx(92.0)
    assert snip.std == pytest.approx(statistics.stdev([90.0, 91.0, 95.0]))  # sqrt(7)
    assert snip.std == pytest.approx(7**0.5)
    assert not snip.achieved_differs


def test_ecs_union_gives_p_and_pq_rows_with_achieved_density(fake_runs):
    table = compare_runs([fake_runs])
    p = table.cell("digits", "VGG16", "ECS (P) [union]", 0.1)
    pq = table.cell("digits", "VGG16", "ECS (P+Q) [union]", 0.1)
    assert (p.mean, pq.mean) == (pytest.approx(89.0), pytest.approx(87.5))
    assert p.achieved == pytest.approx(0.18) and p.achieved_differs
    dense = table.cell("digits", "VGG16", "Dense", 1.0)
    assert dense.mean == 97.5 and dense.std is None
    assert table.densities == [1.0, 0.1]
    assert [m for _, m in table.rows("digits")] == [
        "Dense", "SNIP", "ECS (P) [union]", "ECS (P+Q) [union]"]  # fmt: skip


def test_pq_is_the_int8_models_accuracy_where_one_was_built(tmp_path, make_fake_run):
    """P+Q means pruning + weight sharing + 8 bits: the int8 accuracy where an int8 model was
    built, the shared-weight fp32 one (marked †, counted in fp32_pq) where it was not."""
    fake = make_fake_run
    for seed, int8 in enumerate([86.0, None]):
        quant = {"bits": 5, "test_acc": 90.0, "int8_test_acc": int8}
        fake(tmp_path, f"s{seed}", {"test_acc": 91.0, "density": 0.05, "quant": quant},
             method="ecs", density=0.05, seed=seed)  # fmt: skip
    table = compare_runs([tmp_path])
    pq = table.cell("digits", "VGG16", "ECS (P+Q)", 0.05)
    assert pq.mean == pytest.approx(88.0) and pq.fp32_pq == 1
    assert "88.00 ± 2.83†" in table.markdown() and "int8" in table.caption()
    only_int8 = compare_runs([tmp_path / "s0"]).cell("digits", "VGG16", "ECS (P+Q)", 0.05)
    assert only_int8.mean == 86.0 and only_int8.fp32_pq == 0


def test_unfinished_and_broken_runs_are_left_out_not_fatal(fake_runs):
    table = compare_runs([fake_runs])
    why = {p.rsplit("/", 1)[-1]: reason for p, reason in table.skipped}
    assert why == {"stopped": "status stopped", "nosummary": "status incomplete",
                   "garbage": "status unreadable", "broken": "status unreadable"}  # fmt: skip
    assert all(c.target_density != 0.05 for c in table.cells)


def test_find_runs_walks_folders_but_not_into_runs(fake_runs):
    runs = find_runs([fake_runs, fake_runs / "snip" / "s0"])
    assert len(runs) == 10  # 3 snip + 2 ecs + dense + stopped + nosummary + garbage + broken
    assert run_info(fake_runs / "garbage").status == "unreadable"
    info = run_info(fake_runs / "dense")
    assert (info.method, info.target_density, info.density) == ("none", 1.0, 1.0)


def test_compare_markdown_and_csv_cli(runner, fake_runs):
    res = runner.invoke(app, ["compare", str(fake_runs), "--markdown"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    # ECS's union budget missed its target, so the table has a d/target column
    assert "| model | method | 100% | 10% | d/target |" in lines
    assert "| VGG16 | SNIP | – | 92.00 ± 2.65 | 1.00× |" in lines
    assert "| VGG16 | ECS (P) [union] | – | 89.00 ± 1.41 (d 18.00%) | 1.80× |" in lines
    assert "| VGG16 | Dense | 97.50 | – | 1.00× |" in lines
    assert "4 run(s) not finished" in res.stderr

    res = runner.invoke(app, ["compare", str(fake_runs), "--csv"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    snip = next(r for r in rows if r["method"] == "SNIP")
    assert (snip["n"], snip["mean"], snip["seeds"]) == ("3", "92.0000", "0 1 2")


def test_compare_rich_and_errors(runner, fake_runs, tmp_path):
    res = runner.invoke(app, ["compare", str(fake_runs)], env={"COLUMNS": "120"})
    assert res.exit_code == 0 and "92.00 ± 2.65" in res.stdout and "ECS (P+Q)" in res.stdout
    res = runner.invoke(app, ["compare", str(tmp_path / "missing")])
    assert res.exit_code == 2 and res.stderr.strip().endswith("does not exist")
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["compare", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "no finished runs" in res.stderr


def test_runs_lists_every_run_with_status(runner, fake_runs):
    res = runner.invoke(app, ["runs", str(fake_runs)], env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "10 runs under" in out
    for word in ("finished", "stopped", "incomplete", "unreadable", "snip/s0", "95.00"):
        assert word in out
    assert " ecs-union " in out  # the method as run names spell it (RunConfig.method_tag)
    assert out.splitlines()[1].split()[-2:] == ["time", "path"]  # issue 30, item 6
    lines = out.splitlines()  # piped: a title, a header, then one unwrapped line per run
    assert len(lines) == 12
    for path in find_runs([fake_runs]):
        rel = str(path.relative_to(fake_runs))
        assert sum(line.endswith("  " + rel) for line in lines) == 1, rel
    listed = runner.invoke(app, ["runs", str(fake_runs), "--json"])
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 10 and {r["status"] for r in rows} >= {"finished", "unreadable"}
    assert {r["path"] for r in rows} == {str(p) for p in find_runs([fake_runs])}
    res = runner.invoke(app, ["runs", str(fake_runs / "nothing")])
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_runs_help_says_the_path_it_prints(runner):
    """The help says what the path column holds: relative to FOLDER (it said 'full path'
    while printing bare names; issue 30, item 9). The paths printed: the test above."""
    res = runner.invoke(app, ["runs", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    text = " ".join(res.stdout.replace("│", " ").split())
    assert "full path" not in text.replace("--json gives the full path", "")
    assert "relative to FOLDER" in text, text


def test_a_table_where_every_run_hits_its_target_has_no_ratio_column(fake_runs):
    table = compare_runs([fake_runs / "snip", fake_runs / "dense"])
    header, rows = table.text_rows("digits")
    assert header == ["model", "method", "100%", "10%"]
    assert "d/target" not in table.caption()


def test_baseline_dense_gives_points_against_dense(runner, fake_runs):
    """`--baseline dense`: every pruned cell as its difference to dense in points; one dense
    run has no spread, so no standard error and no mark; the dense row itself stays in
    accuracy; the CSV gains vs_dense and its SE, z, n, paired and beyond columns."""
    table = compare_runs([fake_runs])
    snip = table.cell("digits", "VGG16", "SNIP", 0.1)
    assert table.versus(snip, "Dense") == pytest.approx(92.0 - 97.5)
    res = runner.invoke(app, ["compare", str(fake_runs), "--markdown", "--baseline", "dense"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert "| VGG16 | SNIP | – | -5.50 | 1.00× |" in lines
    assert "| VGG16 | ECS (P) [union] | – | -8.50 (d 18.00%) | 1.80× |" in lines
    assert "| VGG16 | Dense | 97.50 | – | 1.00× |" in lines
    assert "points against Dense" in res.stdout
    res = runner.invoke(app, ["compare", str(fake_runs), "--csv", "--baseline", "dense"])
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(res.stdout))}
    assert rows["SNIP"]["vs_dense"] == "-5.5000" and rows["Dense"]["vs_dense"] == ""
    snip = rows["SNIP"]
    assert [snip[f"vs_dense_{k}"] for k in ("se", "z", "n", "paired", "beyond")] == [
        "", "", "1", "false", "false"]  # fmt: skip
    assert rows["ECS (P) [union]"]["density_ratio"] == "1.8000"


def test_baseline_a_method_compares_at_the_same_density(runner, fake_runs):
    res = runner.invoke(app, ["compare", str(fake_runs), "--markdown", "--baseline", "SNIP"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    # Welch: √(2/2 + 7/3) = 1.83 (ECS 88, 90; SNIP 90, 91, 95); 3.00 < 2 × 1.83: no mark
    assert "| VGG16 | ECS (P) [union] | – | -3.00 ± 1.83 (d 18.00%) | 1.80× |" in lines
    assert "| VGG16 | Dense | – | – | 1.00× |" in lines  # no SNIP at 100%
    for bad, why in [("prune-it", "unknown --baseline method"),
                     ("grasp", "no row GraSP [balanced, xavier]; name a method or one of its rows: "
                      "Dense, ECS (P) [union], ECS (P+Q) [union], SNIP")]:  # fmt: skip
        res = runner.invoke(app, ["compare", str(fake_runs), "--baseline", bad])
        last = res.stderr.strip().splitlines()[-1]
        assert res.exit_code == 2 and why in last, res.output  # one line, the last
        assert sum(not line.startswith("note:") for line in res.stderr.splitlines()) == 1


def test_baseline_a_method_is_its_row_at_todays_defaults_or_a_row_label(
    runner, tmp_path, make_fake_run
):
    """`--baseline grasp` is GraSP at today's defaults, the row labelled `GraSP [balanced,
    xavier]` (it found no row when the method's choices entered the label); the row of runs
    from before the choices, labelled `GraSP`, is a baseline by its label; the same for IMP."""
    fake = make_fake_run
    for seed, (new, old) in enumerate([(70.0, 60.0), (72.0, 63.0), (74.0, 60.0)]):
        fake(tmp_path, f"new{seed}", {"test_acc": new, "density": 0.05}, method="grasp",
             density=0.05, seed=seed)  # fmt: skip
        fake(tmp_path, f"old{seed}", {"test_acc": old, "density": 0.05}, method="grasp",
             density=0.05, seed=seed, grasp_samples="batch", grasp_linear="keep")  # fmt: skip
        fake(tmp_path, f"imp{seed}", {"test_acc": new + 5, "density": 0.05}, method="imp",
             density=0.05, seed=seed, epochs=3)  # fmt: skip
    args = ["compare", str(tmp_path), "--markdown", "--baseline"]
    res = runner.invoke(app, [*args, "grasp"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert "| VGG16 | GraSP [balanced, xavier] | 72.00 ± 2.00 |" in lines
    # old − new: 61 − 72 = −11, Welch √(3/3 + 4/3) = 1.53 (different runs: not paired)
    assert "| VGG16 | GraSP | -11.00 ± 1.53* |" in lines
    res = runner.invoke(app, [*args, "GraSP"])
    assert res.exit_code == 0, res.output
    assert "| VGG16 | GraSP [balanced, xavier] | +11.00 ± 1.53* |" in res.stdout.splitlines()
    res = runner.invoke(app, [*args, "imp"])
    assert res.exit_code == 0, res.output
    assert "| VGG16 | IMP [fresh, dense-output] | 77.00 ± 2.00 |" in res.stdout.splitlines()


def test_ablations_are_rows_of_their_own_and_collapse_is_marked(tmp_path, make_fake_run):
    """SNIP and SNIP [shuffle] are separate rows (same base); a run whose pruning emptied a
    layer is counted in `collapsed` and marked ‡k/n."""
    fake = make_fake_run
    for seed, (acc, shuffled) in enumerate([(80.0, 70.0), (82.0, 74.0)]):
        fake(tmp_path, f"own{seed}", {"test_acc": acc, "density": 0.01}, method="snip",
             density=0.01, seed=seed)  # fmt: skip
        gone = ["features.0.weight"] if seed else []
        layers = [{"name": "features.0.weight", "kept": 0 if seed else 3},
                  {"name": "features.3.weight", "kept": 40 + seed}]  # fmt: skip
        fake(tmp_path, f"shuf{seed}", {"test_acc": shuffled, "density": 0.01,
             "collapsed_layers": gone, "layers": layers}, method="snip", density=0.01,
             seed=seed, ablate="shuffle")  # fmt: skip
    table = compare_runs([tmp_path])
    own = table.cell("digits", "VGG16", "SNIP", 0.01)
    shuf = table.cell("digits", "VGG16", "SNIP [shuffle]", 0.01)
    assert (own.ablate, own.base, own.collapsed) == ("none", "SNIP", 0)
    assert (shuf.ablate, shuf.base, shuf.collapsed) == ("shuffle", "SNIP", 1)
    header, rows = table.text_rows("digits")
    assert rows[1] == ["VGG16", "SNIP [shuffle]", "72.00 ± 2.83‡1/2"]
    assert "layer collapse" in table.caption()
    out = list(csv.DictReader(io.StringIO(table.csv())))
    assert [(r["method"], r["ablate"], r["collapsed_runs"]) for r in out] == [
        ("SNIP", "none", "0"), ("SNIP [shuffle]", "shuffle", "1")]  # fmt: skip
    # the thinnest layer over the cell's runs: 0 (seed 1 emptied features.0); unknown for SNIP
    assert [r["thinnest_layer_kept"] for r in out] == ["", "0"]


def test_the_apps_table_is_ecs_compares_with_run_counts(fake_runs):
    """The Runs tab's table (`compare_renderable`) shows `ecs compare`'s own cells, each with
    its number of runs, and its d/target column where a cell misses its target."""
    from rich.console import Console

    from ecs_tui.widgets.runs import compare_renderable

    table = compare_runs([fake_runs])
    header, rows = table.text_rows("digits", count=True)
    assert header[-1] == "d/target" and rows[1][:2] == ["VGG16", "SNIP"]
    snip = rows[1][header.index("10%")]
    assert snip == f"92.00 ± {7**0.5:.2f} (3)"
    union = rows[2][header.index("10%")]
    assert union.endswith("(d 18.00%)") and "(" in union.split(" (d")[0]
    console = Console(width=160, record=True)
    console.print(compare_renderable(table))
    text = console.export_text()
    assert snip in text and "d/target" in text and "–" in text  # Dense has no 10% cell


def _sweep(fake, root, label, accs, **config):
    """Runs of one recipe over seeds 0, 1, ...: `accs` are their test accuracies (or (P, P+Q))."""
    for seed, acc in enumerate(accs):
        p, pq = acc if isinstance(acc, tuple) else (acc, None)
        quant = {"quant": {"bits": 5, "test_acc": pq, "int8_test_acc": pq}} if pq else {}
        fake(root, f"{label}-s{seed}", {"test_acc": p, "density": config.get("density", 1.0),
             **quant}, seed=seed, **config)  # fmt: skip


def test_different_recipes_are_different_rows_that_say_what_differs(runner, tmp_path,
                                                                   make_fake_run):  # fmt: skip
    """Issue 30: a sweep (2 epochs, 4 batches) and an earlier run (3 epochs, 6 batches), both
    seed 0, were pooled as two seeds. Each recipe is its own row, its label naming the fields
    in which it differs from the method's other runs; a recipe shared by all runs says nothing;
    a baseline compares a row only with the baseline's row of the same recipe."""
    fake = make_fake_run
    _sweep(fake, tmp_path, "a", [20.0, 30.0], method="snip", density=0.1, epochs=2,
           max_batches=4)  # fmt: skip
    _sweep(fake, tmp_path, "b", [5.0], method="snip", density=0.1, epochs=3, max_batches=6)
    _sweep(fake, tmp_path, "d", [50.0, 60.0], method="none", epochs=3, max_batches=6)
    _sweep(fake, tmp_path, "r", [10.0, 12.0], method="random", density=0.1, epochs=3,
           max_batches=6, lr=0.05)  # fmt: skip
    table = compare_runs([tmp_path])
    a = table.cell("digits", "VGG16", "SNIP {epochs 2, max-batches 4}", 0.1)
    b = table.cell("digits", "VGG16", "SNIP {epochs 3, max-batches 6}", 0.1)
    assert (a.n, a.mean, a.seeds, b.n, b.mean, b.seeds) == (2, 25.0, [0, 1], 1, 5.0, [0])
    assert a.recipe == (("epochs", 2), ("max_batches", 4)) and a.plain == "SNIP"
    assert [m for _, m in table.rows("digits")] == [
        "Dense",
        "SNIP {epochs 2, max-batches 4}",
        "SNIP {epochs 3, max-batches 6}",
        "Random",
    ]
    assert "{...} = what sets the row's runs apart" in table.caption()
    # Dense ran 3 epochs of 6 batches: a baseline for b only; lr is Random's alone, not a split
    assert table.versus(a, "Dense") is None and table.versus(b, "Dense") == -50.0
    assert table.cell("digits", "VGG16", "Random", 0.1).recipe == ()
    res = runner.invoke(app, ["compare", str(tmp_path), "--csv"])
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(res.stdout))}
    assert rows["SNIP {epochs 3, max-batches 6}"]["recipe"] == "epochs=3 max_batches=6"
    assert rows["Dense"]["recipe"] == ""


def test_a_field_that_changes_nothing_computed_splits_no_row(tmp_path, make_fake_run):
    """Where a run ran and wrote (device, paths, checkpoints) is not its recipe."""
    fake = make_fake_run
    _sweep(fake, tmp_path, "a", [20.0], method="snip", density=0.1, device="cpu")
    fake(tmp_path, "b", {"test_acc": 30.0, "density": 0.1}, method="snip", density=0.1, seed=1,
         device="cuda", checkpoint_every=5, data_dir="/elsewhere", runs_dir="/x")  # fmt: skip
    (cell,) = compare_runs([tmp_path]).cells
    assert (cell.method, cell.n, cell.mean) == ("SNIP", 2, 25.0)


def test_a_seed_run_twice_with_one_recipe_counts_once(runner, tmp_path, make_fake_run):
    """Two runs of the same recipe and seed are one measurement: the newest finished is used
    (summary.json's time), the other is named in a note, never averaged as a second seed."""
    import os

    fake = make_fake_run
    old = fake(tmp_path, "old", {"test_acc": 10.0, "density": 0.1}, method="snip", density=0.1)
    new = fake(tmp_path, "new", {"test_acc": 30.0, "density": 0.1}, method="snip", density=0.1)
    fake(tmp_path, "s1", {"test_acc": 40.0, "density": 0.1}, method="snip", density=0.1, seed=1)
    os.utime(old / "summary.json", ns=(2_000_000_000_000_000_000,) * 2)  # old finished last
    os.utime(new / "summary.json", ns=(1_000_000_000_000_000_000,) * 2)
    table = compare_runs([tmp_path])
    (cell,) = table.cells
    assert (cell.n, cell.seeds, cell.mean, cell.left_out) == (2, [0, 1], 25.0, 1)
    assert cell.runs == sorted([str(old), str(tmp_path / "s1")])
    (dup,) = table.duplicates
    assert (dup.cell, dup.used, dup.left_out) == ("digits VGG16 SNIP 10% seed 0", str(old),
                                                  [str(new)])  # fmt: skip
    res = runner.invoke(app, ["compare", str(tmp_path), "--markdown"])
    assert res.exit_code == 0, res.output
    assert f"used the newest finished {old}, left out {new}" in res.stderr
    assert "| VGG16 | SNIP | 25.00 ± 21.21 |" in res.stdout and "counts once" in res.stdout


def test_every_quantized_method_has_its_pq_row(tmp_path, make_fake_run):
    """Issue 30: a quantized SNIP run gave no `SNIP (P+Q)` row; ECS keeps its labels."""
    fake = make_fake_run
    _sweep(fake, tmp_path, "snip", [(80.0, 79.0), (82.0, 80.0)], method="snip", density=0.1)
    _sweep(fake, tmp_path, "ecs", [(70.0, 69.0)], method="ecs", density=0.1)
    _sweep(fake, tmp_path, "dense", [90.0], method="none")
    table = compare_runs([tmp_path])
    assert [m for _, m in table.rows("digits")] == [
        "Dense", "SNIP", "SNIP (P+Q)", "ECS (P)", "ECS (P+Q)"]  # fmt: skip
    pq = table.cell("digits", "VGG16", "SNIP (P+Q)", 0.1)
    assert (pq.mean, pq.partner, pq.runs) == (79.5, "SNIP", table.cell(
        "digits", "VGG16", "SNIP", 0.1).runs)  # fmt: skip
    assert table.cell("digits", "VGG16", "ECS (P+Q)", 0.1).partner == "ECS (P)"


def test_welch_standard_error_and_mark(tmp_path, make_fake_run):
    """Different runs: diff of means ± Welch's √(s₁²/n₁ + s₂²/n₂), checked by hand (and against
    scipy's Welch t where scipy is installed); `*` when beyond the threshold in SEs."""
    fake = make_fake_run
    a, b = [80.0, 82.0, 87.0], [70.0, 71.0, 75.0, 76.0]
    _sweep(fake, tmp_path, "snip", a, method="snip", density=0.1)
    _sweep(fake, tmp_path, "random", b, method="random", density=0.1)
    table = compare_runs([tmp_path])
    snip = table.cell("digits", "VGG16", "SNIP", 0.1)
    d = table.difference(snip, "Random")
    # s_a² = ((-3)² + (-1)² + 4²)/2 = 13, s_b² = (3² + 2² + 2² + 3²)/3 = 26/3
    se = (13 / 3 + (26 / 3) / 4) ** 0.5
    assert (d.diff, d.n, d.paired) == (pytest.approx(83.0 - 73.0), 4, False)
    assert d.se == pytest.approx(se) and d.z == pytest.approx(10.0 / se)  # 3.80 SE
    try:
        from scipy import stats
    except ImportError:
        pass
    else:
        assert d.z == pytest.approx(stats.ttest_ind(a, b, equal_var=False).statistic)
    header, rows = table.text_rows("digits", baseline="Random")
    assert rows[0] == ["VGG16", "SNIP", f"+10.00 ± {se:.2f}*"]
    header, rows = table.text_rows("digits", baseline="Random", threshold=4.0)
    assert rows[0] == ["VGG16", "SNIP", f"+10.00 ± {se:.2f}"]
    assert "* = beyond 4 SE" in table.caption("Random", 4.0)


def test_pq_against_p_and_an_ablation_against_its_method_are_paired_by_seed(
    runner, tmp_path, make_fake_run
):
    """P+Q and P are the same runs; an ablation shares the method's seeds: the difference is
    the mean of per-seed differences, SE = s_d/√n, far smaller than Welch's here."""
    fake = make_fake_run
    own = [(80.0, 79.0), (85.0, 84.5), (90.0, 88.0)]  # P - P+Q per seed: 1.0, 0.5, 2.0
    _sweep(fake, tmp_path, "own", own, method="snip", density=0.1)
    _sweep(fake, tmp_path, "shuf", [81.0, 85.0, 92.0], method="snip", density=0.1,
           ablate="shuffle")  # fmt: skip
    table = compare_runs([tmp_path])
    pq = table.cell("digits", "VGG16", "SNIP (P+Q)", 0.1)
    d = table.difference(pq, "SNIP")
    per_seed = [-1.0, -0.5, -2.0]
    assert (d.paired, d.n) == (True, 3)
    assert d.diff == pytest.approx(statistics.fmean(per_seed))
    assert d.se == pytest.approx(statistics.stdev(per_seed) / 3**0.5)  # 0.441
    shuf = table.cell("digits", "VGG16", "SNIP [shuffle]", 0.1)
    d = table.difference(shuf, "SNIP")  # 1, 0, 2 per seed
    assert (d.paired, d.diff, d.se) == (True, pytest.approx(1.0), pytest.approx(1 / 3**0.5))
    res = runner.invoke(app, ["compare", str(tmp_path), "--csv", "--baseline", "snip"])
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(res.stdout))}
    pq_row = rows["SNIP (P+Q)"]
    assert [pq_row[f"vs_snip{k}"] for k in ("", "_se", "_n", "_paired", "_beyond")] == [
        "-1.1667", "0.4410", "3", "true", "true"]  # fmt: skip
    res = runner.invoke(app, ["compare", str(tmp_path), "--markdown", "--baseline", "snip"])
    assert "| VGG16 | SNIP (P+Q) | -1.17 ± 0.44 p* |" in res.stdout.splitlines()
    res = runner.invoke(app, ["compare", str(tmp_path), "--baseline", "snip", "--threshold", "0"])
    assert res.exit_code == 2 and "--threshold must be a positive" in res.stderr


def test_quantization_settings_split_pq_rows_not_p_rows(tmp_path, make_fake_run):
    """Weight sharing acts after the pruned model's accuracy is taken (config.AFTER_PRUNING):
    a quantized and an unquantized SNIP run pool as seeds in the P row (and a bits-4 rerun of
    seed 0 is that seed again), while the P+Q rows split by bits; an ablation run without
    quantization stays paired with its method."""
    fake = make_fake_run
    q = {"quant": {"bits": 5, "test_acc": 70.0, "int8_test_acc": 70.0}}
    fake(tmp_path, "q5", {"test_acc": 80.0, "density": 0.1, **q}, method="snip", density=0.1)
    q4 = {"quant": {"bits": 4, "test_acc": 60.0, "int8_test_acc": 60.0}}
    fake(tmp_path, "q4", {"test_acc": 80.0, "density": 0.1, **q4}, method="snip", density=0.1,
         bits=4)  # fmt: skip
    fake(tmp_path, "plain", {"test_acc": 90.0, "density": 0.1}, method="snip", density=0.1,
         seed=1, quantize=False)  # fmt: skip
    for seed in (0, 1):
        fake(tmp_path, f"shuf{seed}", {"test_acc": 75.0 + seed, "density": 0.1}, method="snip",
             density=0.1, seed=seed, ablate="shuffle", quantize=False)  # fmt: skip
    table = compare_runs([tmp_path])
    assert [m for _, m in table.rows("digits")] == [
        "SNIP", "SNIP [shuffle]", "SNIP (P+Q) {bits 4}", "SNIP (P+Q) {bits 5}"]  # fmt: skip
    p = table.cell("digits", "VGG16", "SNIP", 0.1)
    assert (p.n, p.seeds, p.mean, p.left_out) == (2, [0, 1], 85.0, 1)
    assert table.cell("digits", "VGG16", "SNIP (P+Q) {bits 4}", 0.1).partner == "SNIP"
    d = table.difference(table.cell("digits", "VGG16", "SNIP [shuffle]", 0.1), "SNIP")
    assert (d.paired, d.diff) == (True, pytest.approx(-9.5))
    d = table.difference(table.cell("digits", "VGG16", "SNIP (P+Q) {bits 5}", 0.1), "SNIP")
    assert (d.paired, d.diff, d.se) == (False, pytest.approx(70.0 - 85.0), None)


def test_the_threshold_help_says_the_default_the_command_uses():
    from ecs_core.stats.significance import THRESHOLD
    from ecs_tui.commands.inspect import THRESHOLD_HELP

    assert float(THRESHOLD_HELP) == THRESHOLD


def test_runs_has_a_time_column(runner, make_fake_run, tmp_path):
    """`ecs runs` says how long each ended run took (issue 30, item 6)."""
    make_fake_run(tmp_path, "done", {"test_acc": 50.0, "seconds": 81.0}, method="snip")
    res = runner.invoke(app, ["runs", str(tmp_path)])
    header, row = res.stdout.splitlines()[1:3]
    assert header.split()[-2:] == ["time", "path"] and row.split()[-2:] == ["1:21", "done"]


def test_distributions_and_structures_never_pool(tmp_path, make_fake_run):
    """Runs that differ only in their per-layer budget or structure are rows of their own (the
    label and the CSV's distribution and structure columns say which): SNIP with one global
    threshold, SNIP [erk], RigL (erk, its own default) and RigL [global], Random [layer, channel]
    (channels spread layer by layer, their default); two seeds of one recipe pool."""
    fake = make_fake_run
    runs = [("snip", {}), ("snip", {"distribution": "erk"}), ("rigl", {}),
            ("rigl", {"distribution": "global"}), ("random", {"structure": "channel"})]  # fmt: skip
    for i, (method, settings) in enumerate(runs):
        for seed in (0, 1):
            fake(tmp_path, f"r{i}s{seed}", {"test_acc": 80.0 + i + seed, "density": 0.05},
                 method=method, density=0.05, seed=seed, **settings)  # fmt: skip
    table = compare_runs([tmp_path])
    got = {(c.method, c.n, c.mean) for c in table.cells if "(P+Q)" not in c.method}
    assert got == {("SNIP", 2, 80.5), ("SNIP [erk]", 2, 81.5), ("RigL", 2, 82.5),
                   ("RigL [global]", 2, 83.5), ("Random [layer, channel]", 2, 84.5)}  # fmt: skip
    out = {r["method"]: r for r in csv.DictReader(io.StringIO(table.csv()))}
    assert [(out[m]["distribution"], out[m]["structure"]) for m in
            ("SNIP", "SNIP [erk]", "RigL", "RigL [global]", "Random [layer, channel]")] == [
        ("global", "weight"), ("erk", "weight"), ("erk", "weight"), ("global", "weight"),
        ("uniform", "channel")]  # fmt: skip
