"""core.explorer.sweeps: the runs table of a 120-run sweep written without weights (tests/sweep_runs.py): the keys
that differ, sorting, filtering by text and by range, grouping seeds into mean ± std rows (a hand-computed case),
the parallel-coordinates data, and what can be opened in Compare and Metrics."""

from __future__ import annotations

import shutil

import pytest

from core import explorer as A
from core.explorer import Workspace, sweeps
from core.explorer.tables import display_rows
from core.runs import RunError
from tests.sweep_runs import HFLIPS, LRS, SEEDS, WIDTHS, make_sweep, run_name, sweep_grid, sweep_miou, write_run


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return Workspace.discover(make_sweep(tmp_path_factory.mktemp("sweep") / "runs"))


@pytest.fixture(scope="module")
def full(ws):
    return sweeps.table(ws)


def test_a_sweep_without_weights_is_listed_with_the_keys_that_differ(ws, full):
    assert not ws.runs and len(ws.pending) == 120 and not ws.problems  # no weights yet: listed all the same
    assert full["total"] == full["shown"] == 120 and len(full["rows"]) == 120
    assert full["config_keys"] == ["parameters (M)", "model.base_width", "hflip", "lr", "seed", "tag.family"]
    assert full["score"] == "mIoU" and full["columns"][:8] == ["run", *full["config_keys"], "mIoU"]
    assert {"state", "epoch", "of", "time left (min)", "best epoch", "train time (min)"} <= set(full["columns"])
    assert "optimizer" not in full["columns"] and "out" not in full["columns"]  # equal everywhere, or not a hyper-parameter
    row = {r["run"]: r for r in full["rows"]}[run_name(1e-3, 16, 0.5, 2)]
    assert row["mIoU"] == pytest.approx(sweep_miou(1e-3, 16, 0.5, 2)) and row["best epoch"] == 5
    assert (row["lr"], row["model.base_width"], row["hflip"], row["seed"], row["tag.family"]) == (1e-3, 16, 0.5, 2, "large")
    assert row["state"] == "finished" and (row["epoch"], row["of"], row["snapshots"]) == (5, 5, 0)
    assert row["train time (min)"] == pytest.approx(0.5) and row["parameters (M)"] == pytest.approx(1900 * 16 * 16 / 1e6)
    assert set(full["numeric"]) >= {"lr", "seed", "hflip", "mIoU", "parameters (M)"} and "tag.family" not in full["numeric"]


def test_sort_by_any_column_with_empty_cells_last(ws, full, tmp_path):
    by_score = sweeps.table(ws, sort_by="mIoU", descending=True)
    scores = [r["mIoU"] for r in by_score["rows"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(max(sweep_miou(*g) for g in sweep_grid()))
    assert by_score["runs"] == [r["run"] for r in by_score["rows"]]
    by_lr = [r["lr"] for r in sweeps.table(ws, sort_by="lr")["rows"]]
    assert by_lr == sorted(by_lr) and by_lr[0] == 1e-4 and by_lr[-1] == 0.1
    assert [r["tag.family"] for r in sweeps.table(ws, sort_by="tag.family")["rows"]][:1] == ["large"]
    with pytest.raises(ValueError, match="cannot sort by 'nope': choose a column among run, "):
        sweeps.table(ws, sort_by="nope")
    rows = [{"run": "a", "x": 2}, {"run": "b", "x": None}, {"run": "c", "x": 10}, {"run": "d", "x": float("nan")}]
    assert [r["run"] for r in sweeps.sort_rows(rows, "x")] == ["a", "c", "b", "d"]
    assert [r["run"] for r in sweeps.sort_rows(rows, "x", descending=True)] == ["c", "a", "b", "d"]


def test_filter_by_text_and_by_range(ws):
    large = sweeps.table(ws, search="LARGE f0.5")  # every word, in any cell, ignoring case
    assert large["shown"] == len(LRS) * 3 * len(SEEDS) and all(
        r["tag.family"] == "large" and r["hflip"] == 0.5 for r in large["rows"]
    )
    mid = sweeps.table(ws, range_column="lr", range_min=1e-3, range_max=1e-2)  # both ends included
    assert mid["shown"] == 2 * len(WIDTHS) * len(HFLIPS) * len(SEEDS) and {r["lr"] for r in mid["rows"]} == {1e-3, 1e-2}
    assert mid["total"] == 120 and mid["config_keys"] == sweeps.table(ws)["config_keys"]  # columns stay while filtering
    good = sweeps.table(ws, search="large", range_column="mIoU", range_min=0.45)
    assert good["shown"] == sum(1 for g in sweep_grid() if g[1] > 8 and sweep_miou(*g) >= 0.45) > 0
    assert sweeps.table(ws, range_column="seed", range_max=0)["shown"] == 40  # one end open
    assert sweeps.table(ws, range_column="seed")["shown"] == 120  # a column with no bound yet filters nothing
    with pytest.raises(ValueError, match="cannot filter 'tag.family' by a range: choose a numeric column among"):
        sweeps.table(ws, range_column="tag.family", range_min=1)
    with pytest.raises(ValueError, match="a range needs a column"):
        sweeps.table(ws, range_min=1)
    assert sweeps.table(ws, search="no-such-run")["rows"] == []


@pytest.fixture(scope="module")
def seeds_ws(tmp_path_factory):
    """3 seeds x 2 learning rates with chosen final mIoUs, and a run still training with no score yet."""
    root = tmp_path_factory.mktemp("seeds") / "runs"
    for lr, mious in ((1e-3, (0.50, 0.52, 0.54)), (1e-2, (0.40, 0.43, 0.46))):
        for seed, miou in enumerate(mious):
            write_run(root / f"lr{lr:g}-s{seed}", lr=lr, seed=seed, miou=miou)
    return Workspace.discover(root)


def test_grouping_seeds_gives_mean_std_and_counts(seeds_ws):
    table = sweeps.table(seeds_ws, group_by=["seed"], sort_by="mIoU", descending=True)
    assert table["columns"][:6] == ["run", "runs", "lr", "seed", "mIoU", "mIoU std"]
    (a, b) = table["rows"]
    assert (a["lr"], a["runs"], a["seed"], a["members"]) == (1e-3, 3, [0, 1, 2], ["lr0.001-s0", "lr0.001-s1", "lr0.001-s2"])
    # by hand: mean (0.50 + 0.52 + 0.54) / 3 = 0.52; sample std sqrt((0.02² + 0 + 0.02²) / 2) = 0.02
    assert a["mIoU"] == pytest.approx(0.52) and a["mIoU std"] == pytest.approx(0.02)
    assert b["lr"] == 1e-2 and b["mIoU"] == pytest.approx(0.43) and b["mIoU std"] == pytest.approx(0.03) and b["runs"] == 3
    assert a["val loss"] == pytest.approx(1.6 - 0.52) and a["val loss std"] == pytest.approx(0.02)  # every score
    assert a["run"] == "lr0.001-s0 (+2)" and a["state"] == "finished" and table["runs"] == a["members"] + b["members"]
    shown = display_rows(table["rows"], table["columns"])
    assert shown[0]["mIoU"] == "0.52 ± 0.02" and shown[0]["seed"] == "0, 1, 2" and "mIoU std" not in shown[0]
    by_lr = sweeps.table(seeds_ws, group_by=["lr"])  # the learning rate varies inside: one row per seed, 2 runs each
    assert [(r["seed"], r["runs"]) for r in by_lr["rows"]] == [(0, 2), (1, 2), (2, 2)]
    assert by_lr["rows"][0]["mIoU"] == pytest.approx((0.50 + 0.40) / 2)
    narrowed = sweeps.table(seeds_ws, group_by=["seed"], range_column="mIoU", range_min=0.42)  # filtered, then grouped
    assert [r["runs"] for r in narrowed["rows"]] == [3, 2] and narrowed["rows"][1]["mIoU"] == pytest.approx(0.445)
    with pytest.raises(
        ValueError, match="cannot group by 'sede': choose configuration keys, e.g. among the ones that differ: lr, seed"
    ):
        sweeps.table(seeds_ws, group_by=["sede"])


def test_a_group_of_one_and_a_run_without_scores(seeds_ws, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(seeds_ws.runs_dir, root)
    write_run(root / "lr0.1-s0", lr=0.1, miou=0.2, epochs=1, state="running")
    (root / "lr0.1-s0" / "history.jsonl").unlink()  # started, no epoch finished yet
    table = sweeps.table(Workspace.discover(root), group_by=["seed"], sort_by="mIoU")
    last = table["rows"][-1]  # no score: last, in either order
    assert last["lr"] == 0.1 and last["runs"] == 1 and last["mIoU"] is None and last["mIoU std"] is None
    assert last["state"] in ("interrupted", "training, no weights yet")
    assert table["parcoords"]["unscored"] == ["lr0.1-s0"]


def test_parcoords_data_matches_the_filtered_runs(ws):
    table = sweeps.table(ws, search="f0.5", range_column="model.base_width", range_min=16)
    pc = table["parcoords"]
    rows = {r["run"]: r for r in table["rows"]}
    assert pc["runs"] == [r["run"] for r in table["rows"]] and len(pc["runs"]) == len(LRS) * 3 * len(SEEDS)
    dims = {d["label"]: d for d in pc["dimensions"]}
    assert "hflip" not in dims and "tag.family" not in dims  # the same for every filtered run: no information
    assert list(dims)[-1] == "mIoU" and pc["color"] == [rows[n]["mIoU"] for n in pc["runs"]] == dims["mIoU"]["values"]
    lr = dims["lr (log)"]  # four decades: a log10 axis labelled with the learning rates
    assert [10**v for v in lr["values"]] == pytest.approx([rows[n]["lr"] for n in pc["runs"]])
    assert lr["ticktext"] == ["0.0001", "0.001", "0.01", "0.1"]
    assert dims["model.base_width"]["values"] == [rows[n]["model.base_width"] for n in pc["runs"]]
    seed = dims["seed"]
    assert seed["values"] == [rows[n]["seed"] for n in pc["runs"]]
    # a categorical key: codes with the labels as ticks
    families = sweeps.table(ws, search="f0-", range_column="model.base_width", range_min=8, range_max=16)
    fam = {d["label"]: d for d in families["parcoords"]["dimensions"]}["tag.family"]
    assert fam["ticktext"] == ["large", "small"] and fam["tickvals"] == [0, 1]
    names = families["parcoords"]["runs"]
    by_name = {r["run"]: r for r in families["rows"]}
    assert [fam["ticktext"][v] for v in fam["values"]] == [by_name[n]["tag.family"] for n in names]


def test_selections_for_compare_and_metrics(ws, explorer_runs, tmp_path):
    with pytest.raises(ValueError, match="none of the selected runs has saved weights yet"):
        sweeps.compare_selection(ws, list(ws.pending)[:3])
    assert sweeps.metrics_selection(ws, list(ws.pending)) == list(ws.pending)  # 120: no weights needed
    with pytest.raises(ValueError, match=f"at most {A.MAX_HISTORY_RUNS} runs"):
        sweeps.metrics_selection(ws, list(ws.pending) + ["x"])
    with pytest.raises(RunError, match="unknown run 'x'"):
        sweeps.metrics_selection(ws, ["x"])
    root = tmp_path / "runs"
    for name in ("seg-a", "seg-b", "cls-a"):
        if (explorer_runs / name).exists():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).symlink_to(explorer_runs / name, target_is_directory=True)
    write_run(root / "pending", lr=1e-3)
    mixed = Workspace.discover(root)
    chosen = sweeps.compare_selection(mixed, ["pending", "seg-b", "cls-a", "seg-a"] * 2, limit=1)
    assert chosen["runs"] == ["seg-b"] and chosen["source"] == mixed.dataset("seg-b").source
    reasons = {r["run"]: r["reason"] for r in chosen["left_out"]}
    assert reasons["pending"] == "no saved weights yet" and reasons["seg-a"] == "Compare shows at most 1 runs"
    assert "cls-a" not in mixed.runs or reasons["cls-a"].startswith("predicts other classes than")
    assert sweeps.add_row_runs({"rows": [{"run": "g (+1)", "members": ["g", "h"]}]}, "g (+1)", ["h", "z"]) == ["h", "z", "g"]


def test_display_rounds_scores_but_not_hyperparameters():
    rows = [{"run": "r", "lr": 0.0001, "mIoU": 0.123456, "parameters (M)": 1.23456, "train time (min)": 2.345, "seed": [0, 1]}]
    shown = display_rows(rows, ["run", "lr", "mIoU", "parameters (M)", "train time (min)", "seed"])[0]
    assert shown == {"run": "r", "lr": 0.0001, "mIoU": 0.123, "parameters (M)": 1.23, "train time (min)": 2.3, "seed": "0, 1"}
