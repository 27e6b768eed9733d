"""Multi-scale test-time augmentation (``--tta-scales``): the merge against hand-computed cases, odd sizes, the
engine's validation, the Predictor following its run, and the CamVid bench's scoring with its cost."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from core.inference import Predictor
from core.models import get_model
from core.runs import load_run
from core.tasks import ClassificationTask, SegmentationTask, merge_scales, predict_logits
from core.train.config import TrainConfig, parse_scales
from core.train.setup import check_options


class SizeDependent(torch.nn.Module):
    """A fixed function of the image's size: class-0 logit h / 8 everywhere, class-1 logit 0."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, h, w = x.shape
        self.seen.append((h, w))
        return {"out": torch.stack([torch.full((b, h, w), h / 8), torch.zeros(b, h, w)], 1)}  # (B, 2, h, w)


def test_one_scale_is_the_plain_forward() -> None:
    model = get_model("resunet", num_classes=4, widths=[4, 8, 8, 16, 16], blocks=[1, 1, 1, 1]).eval()
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        plain = model(x)["out"]
        assert torch.equal(predict_logits(model, x, tta_scales=[1.0]), plain)
        assert torch.equal(predict_logits(model, x, tta_scales=None), plain)
        torch.testing.assert_close(merge_scales(model, x, [1.0]).exp(), plain.softmax(1))


def test_multi_scale_average_on_a_hand_computed_case() -> None:
    model, x = SizeDependent(), torch.zeros(1, 3, 8, 12)
    merged = merge_scales(model, x, [0.5, 1, 2], flip=True)  # (1, 2, 8, 12)
    assert merged.shape == (1, 2, 8, 12)
    assert sorted(set(model.seen)) == [(4, 6), (8, 12), (16, 24)] and len(model.seen) == 6  # each scale, and its mirror
    sigmoid = [1 / (1 + math.exp(-h / 8)) for h in (4, 8, 16)]  # p(class 0) of each pass: logits (h/8, 0)
    expected = sum(sigmoid) / 3
    torch.testing.assert_close(merged.exp()[0, 0], torch.full((8, 12), expected))
    torch.testing.assert_close(merged.exp().sum(1), torch.ones(1, 8, 12))
    model.seen.clear()
    at_one = torch.stack([torch.full((1, 8, 12), 5.0), torch.zeros(1, 8, 12)], 1)  # a plain pass already computed
    reused = merge_scales(model, x, [0.5, 1], at_one=at_one)
    assert model.seen == [(4, 6)]  # the scale-1 pass was not run again
    p = (1 / (1 + math.exp(-0.5)) + 1 / (1 + math.exp(-5.0))) / 2
    torch.testing.assert_close(reused.exp()[0, 0], torch.full((8, 12), p))


def test_mirrored_passes_are_flipped_back() -> None:
    class LeftLoving(torch.nn.Module):  # class 0 likes the left half of whatever it is shown
        def forward(self, x):
            ramp = torch.linspace(1, -1, x.shape[-1]).expand(x.shape[0], 1, x.shape[-2], x.shape[-1])
            return {"out": torch.cat([ramp, -ramp], 1)}

    merged = merge_scales(LeftLoving(), torch.zeros(1, 3, 4, 6), [1, 2], flip=True)
    torch.testing.assert_close(merged.exp()[0, 0], torch.full((4, 6), 0.5))  # each mirror undoes its pass's preference


def test_odd_sizes_work_with_a_real_model() -> None:
    model = get_model("resunet", num_classes=5, widths=[4, 8, 8, 16, 16], blocks=[1, 1, 1, 1]).eval()
    x = torch.randn(2, 3, 61, 83)
    with torch.no_grad():
        merged = predict_logits(model, x, tta_flip=True, tta_scales=[0.75, 1, 1.25])
    assert merged.shape == (2, 5, 61, 83) and torch.isfinite(merged).all()
    torch.testing.assert_close(merged.exp().sum(1), torch.ones(2, 61, 83))


def test_scales_are_parsed_and_refused_clearly() -> None:
    assert parse_scales("0.75,1,1.25") == [0.75, 1.0, 1.25]
    for bad in ("", "0.5,x", "0,1", "1,1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_scales(bad)
    with pytest.raises(ValueError, match="--tta-scales .* a classification model cannot use it"):
        check_options(TrainConfig(tta_scales=[1.0, 1.5]), ClassificationTask)
    check_options(TrainConfig(tta_scales=[1.0, 1.5]), SegmentationTask)


def test_run_validates_with_its_scales_and_the_predictor_follows_it(tmp_path) -> None:
    from core.train import main as train_main
    from tests.train.test_train import TINY

    out = tmp_path / "run"
    assert train_main(TINY + ["--data-opt", "num_images=4", "--epochs", "1", "--tta-scales", "0.5,1", "--out", str(out)]) == 0
    run = load_run(out)
    assert run.config["train"]["tta_scales"] == [0.5, 1.0] and math.isfinite(run.history[0]["miou"])
    assert Predictor(run, 1, device="cpu").tta_scales == (0.5, 1.0)
    assert Predictor(run, 1, device="cpu", tta_scales=()).tta_scales == ()
    assert Predictor(run, 1, device="cpu", tta_scales=[1]).tta_scales == ()
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    predictor = Predictor(run, 1, device="cpu")
    got = predictor.predict([image], features=True)[0]
    x = predictor.preprocess([image])[0]
    model = run.build_model(1).eval()
    with torch.inference_mode():
        expected = merge_scales(model, x, [0.5, 1]).exp()[0].numpy()
        features = model.features(x)[0].numpy()
    np.testing.assert_allclose(got.probs, expected, atol=1e-5)
    np.testing.assert_allclose(got.features, features, atol=1e-5)  # the features of the scale-1 pass


def test_camvid_bench_scores_with_scales_and_reports_the_time_per_image(tiny_seg_run, monkeypatch, capsys) -> None:
    import bench.camvid as bench
    from core.data import get_dataset

    monkeypatch.setattr(bench, "get_dataset", lambda *a, **k: get_dataset("synthstreets", "val", num_images=2, size=(48, 64)))
    args = ["--run", str(tiny_seg_run[0]), "--split", "val", "--epoch", "2", "--tta-scales", "0.75,1,1.25", "--threads", "1"]
    bench.evaluate_split(bench.parse_args(args))
    text = capsys.readouterr().out
    assert "with TTA (scales 0.75,1,1.25)" in text and "ms per image" in text
    result = __import__("json").loads(text.split("RESULT ", 1)[1])
    assert result["tta_scales"] == [0.75, 1.0, 1.25] and result["seconds_per_image"] > 0
    cfg = bench.recipe_config(bench.parse_args(["--recipe", "resunet60", "--epochs", "1", "--tta-scales", "0.75,1,1.25"]))
    assert cfg.tta_scales == [0.75, 1.0, 1.25] and cfg.tta_flip is True
