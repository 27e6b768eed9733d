"""Tags: ``--tag NAME=VALUE`` and ``RunWriter(tags=)`` record free labels in run.json's "tags" section (not among
the hyper-parameters), ``--resume`` adds to them, and the explorer's runs table shows each tag as a column."""

from __future__ import annotations

import json

import pytest

from core.explorer import Workspace, sweeps
from core.models import get_model
from core.runs import load_run
from core.train.config import TrainConfig, build_parser, check_tags, config_from_args
from core.train.session import main as train_main
from core.train.writer import RunWriter
from tests.sweep_runs import write_run
from tests.train.test_train import TINY


def test_tag_options_parse_into_the_config_and_round_trip():
    cfg = config_from_args(build_parser().parse_args(["--tag", "sweep=lr", "--tag", "note=a=b", "--tag", "empty="]))
    assert cfg.tags == {"sweep": "lr", "note": "a=b", "empty": ""}  # the value is everything after the first "="
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert config_from_args(build_parser().parse_args([])).tags == {}
    with pytest.raises(ValueError, match="--tag sweep is given twice"):
        config_from_args(build_parser().parse_args(["--tag", "sweep=lr", "--tag", "sweep=width"]))
    for bad in ("novalue", "=x"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--tag", bad])
    with pytest.raises(ValueError, match="tag 'grid': a value is text, a number or a boolean"):
        check_tags({"grid": [1, 2]})


def test_a_tagged_training_records_its_tags_and_resume_adds_to_them(tmp_path, capsys):
    out = tmp_path / "runs" / "tagged"
    args = ["--data-opt", "num_images=4", "--epochs", "1", "--out", str(out)]
    assert train_main(TINY + args + ["--tag", "sweep=lr", "--tag", "note=first"]) == 0
    cfg = json.loads((out / "run.json").read_text())
    assert cfg["tags"] == {"sweep": "lr", "note": "first"} and "tags" not in cfg["train"]
    # a finished run has nothing left to train, but its tags are still added (one of the same name replaced)
    assert train_main(["--resume", str(out), "--tag", "note=baseline", "--tag", "owner=ana"]) == 0
    assert load_run(out).config["tags"] == {"sweep": "lr", "note": "baseline", "owner": "ana"}
    assert "tags note=baseline, owner=ana recorded" in capsys.readouterr().out
    write_run(tmp_path / "runs" / "other", lr=1e-3, tags={"sweep": "width"})
    table = sweeps.table(Workspace.discover(tmp_path / "runs"))
    assert {"tag.sweep", "tag.note", "tag.owner"} <= set(table["config_keys"])
    rows = {r["run"]: r for r in table["rows"]}
    assert rows["tagged"]["tag.sweep"] == "lr" and rows["other"]["tag.sweep"] == "width" and rows["other"]["tag.owner"] is None


def test_run_writer_records_tags_and_adds_them_on_resume(tmp_path):
    model = get_model("unet", num_classes=3, base_width=4, depth=2)
    info = dict(classes=["a", "b", "c"], palette=[(0, 0, 0), (1, 1, 1), (2, 2, 2)], ignore_index=255)
    w = RunWriter(tmp_path / "r", model=model, hparams={"lr": 0.01}, tags={"sweep": "lr", "width": 4}, **info)
    w.log_epoch(1, train_loss=1.0)
    cfg = load_run(tmp_path / "r").config
    assert cfg["tags"] == {"sweep": "lr", "width": 4} and cfg["train"]["lr"] == 0.01
    RunWriter(tmp_path / "r", model=model, resume=True, tags={"width": 8}, **info).close()
    assert load_run(tmp_path / "r").config["tags"] == {"sweep": "lr", "width": 8}
    with pytest.raises(ValueError, match="a tag name must be non-empty text"):
        RunWriter(tmp_path / "s", model=model, tags={"": "x"}, **info)
