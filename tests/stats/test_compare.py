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
                   "garbage": "status unreadable", "broken": "status incomplete"}  # fmt: skip
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


def test_a_table_where_every_run_hits_its_target_has_no_ratio_column(fake_runs):
    table = compare_runs([fake_runs / "snip", fake_runs / "dense"])
    header, rows = table.text_rows("digits")
    assert header == ["model", "method", "100%", "10%"]
    assert "d/target" not in table.caption()


def test_baseline_dense_gives_points_against_dense(runner, fake_runs):
    """`--baseline dense`: every pruned cell as its difference to dense in points (with its own
    std); the dense row itself stays in accuracy; the CSV gains a vs_dense column."""
    table = compare_runs([fake_runs])
    snip = table.cell("digits", "VGG16", "SNIP", 0.1)
    assert table.versus(snip, "Dense") == pytest.approx(92.0 - 97.5)
    res = runner.invoke(app, ["compare", str(fake_runs), "--markdown", "--baseline", "dense"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert "| VGG16 | SNIP | – | -5.50 ± 2.65 | 1.00× |" in lines
    assert "| VGG16 | ECS (P) [union] | – | -8.50 ± 1.41 (d 18.00%) | 1.80× |" in lines
    assert "| VGG16 | Dense | 97.50 | – | 1.00× |" in lines
    assert "points against Dense" in res.stdout
    res = runner.invoke(app, ["compare", str(fake_runs), "--csv", "--baseline", "dense"])
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(res.stdout))}
    assert rows["SNIP"]["vs_dense"] == "-5.5000" and rows["Dense"]["vs_dense"] == ""
    assert rows["ECS (P) [union]"]["density_ratio"] == "1.8000"


def test_baseline_a_method_compares_at_the_same_density(runner, fake_runs):
    res = runner.invoke(app, ["compare", str(fake_runs), "--markdown", "--baseline", "SNIP"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert "| VGG16 | ECS (P) [union] | – | -3.00 ± 1.41 (d 18.00%) | 1.80× |" in lines
    assert "| VGG16 | Dense | – | – | 1.00× |" in lines  # no SNIP at 100%
    for bad, why in [("prune-it", "unknown --baseline method"), ("grasp", "no finished GraSP")]:
        res = runner.invoke(app, ["compare", str(fake_runs), "--baseline", bad])
        last = res.stderr.strip().splitlines()[-1]
        assert res.exit_code == 2 and why in last, res.output  # one line, the last
        assert sum(not line.startswith("note:") for line in res.stderr.splitlines()) == 1


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
