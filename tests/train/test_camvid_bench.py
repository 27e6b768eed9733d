"""``bench/camvid.py``'s recipe overrides for the issue-30 options (no data is read: configurations only)."""

from __future__ import annotations

import pytest

from bench.camvid import RECIPES, parse_args, recipe_config


def config(*extra: str):
    return recipe_config(parse_args(["--recipe", "resunet60", "--holdout", "0006R0", "--out", "x", *extra]))


def test_recipes_are_unchanged_without_overrides() -> None:
    cfg = config("--epochs", "73")
    assert (cfg.loss, cfg.rare_crop, cfg.rare_classes, cfg.resize_stages, cfg.tta_scales) == ("ce", 0.0, None, None, None)
    assert cfg.tta_flip is True and cfg.crop == RECIPES["resunet60"]["crop"] and cfg.epochs == 73 and cfg.budget_min is None


def test_overrides_reach_the_config() -> None:
    cfg = config("--epochs", "10", "--loss", "ohem", "--ohem-min-kept", "50000", "--rare-crop", "0.5", "--rare-classes", "2,9")
    assert (cfg.loss, cfg.ohem_min_kept, cfg.rare_crop, cfg.rare_classes) == ("ohem", 50000, 0.5, [2, 9])
    cfg = config("--loss", "ce+lovasz", "--lovasz-per-image")
    assert cfg.loss == "ce+lovasz" and cfg.lovasz_per_image is True and cfg.budget_min == 60.0


def test_a_staged_recipe_trains_its_epochs_not_a_budget() -> None:
    cfg = config("--resize-stages", "0.5x50,1x15")
    assert cfg.resize_stages == "0.5x50,1x15" and cfg.epochs == 65 and cfg.budget_min is None
    cfg = config("--resize-stages", "0.5x50,1x15", "--epochs", "70")  # the session refuses the mismatch
    assert cfg.epochs == 70
    with pytest.raises(ValueError, match="FACTORxEPOCHS"):
        config("--resize-stages", "half")


def test_equivalent_epochs_converts_the_reference_budget() -> None:
    from bench.camvid_speed import equivalent_epochs

    assert equivalent_epochs(6.0, 6.0, 266) == pytest.approx(73)  # the reference itself
    assert equivalent_epochs(12.0, 6.0, 266) == pytest.approx(146)  # twice as fast: twice the epochs
    assert equivalent_epochs(6.0, 6.0, 305) == pytest.approx(73 * 266 / 305)  # the 0001TP fold has more images


def test_speed_tool_times_a_recipe_and_its_stages(capsys) -> None:
    from bench.camvid_speed import main

    tiny = ["--recipe", "unet", "--size", "48", "64", "--crop", "32", "48", "--model-arg", "base_width=4", "--threads", "1"]
    timing = ["--steps", "1", "--warmup", "0", "--images", "4", "--reference-ips", "6.0"]
    main(tiny + timing + ["--resize-stages", "0.5x2,1x1", "--loss", "ohem", "--rare-crop", "0.5"])
    text = capsys.readouterr().out
    assert "the budget: 53.9 min of training steps" in text  # 73 x 266 / 6.0 s
    assert "candidate at 0.5x its size" in text and "candidate at 1x its size" in text
    assert "--resize-stages 0.5x2,1x1:" in text and "stretched to fill it: --resize-stages 0.5x" in text
    with pytest.raises(SystemExit, match="not both"):
        main(tiny + timing + ["--resize-stages", "0.5x2,1x1", "--stage-factor", "0.5"])
