import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from core.evaluation.metrics import (
    ConfusionMatrix,
    confusion_matrix,
    nanmean,
    per_image_iou,
    per_image_scores,
    scores,
    topk_correct,
)


def test_hand_computed_case_with_absent_class_and_ignored_pixels():
    # 4 classes, ignore 255. Class 3 is in neither labels nor predictions.
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 3, 0]])  # predictions on ignored pixels must not count
    cm = confusion_matrix(pred, target, 4, ignore_index=255)
    expected = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(cm.numpy(), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning for the absent class
        s = scores(cm)
    assert s["pixel_acc"] == pytest.approx(4 / 6)
    # IoU: c0 = 1 / (2 + 2 - 1) = 1/3, c1 = 2 / (2 + 3 - 2) = 2/3, c2 = 1 / (2 + 1 - 1) = 1/2, c3 absent
    assert s["iou"][:3] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(s["iou"][3])
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)  # the absent class is left out, not 0
    assert s["class_acc"][:3] == pytest.approx([1 / 2, 1.0, 1 / 2])
    assert s["mean_acc"] == pytest.approx(2 / 3)
    assert s["fwiou"] == pytest.approx((2 * 1 / 3 + 2 * 2 / 3 + 2 * 1 / 2) / 6)


def test_false_positive_class_counts_as_zero_not_absent():
    target = torch.tensor([0, 0, 0, 0])
    pred = torch.tensor([0, 0, 0, 1])  # class 1 predicted but never true: IoU 0, included in the mean
    s = scores(confusion_matrix(pred, target, 3))
    assert s["iou"][1] == 0.0 and math.isnan(s["iou"][2])
    assert s["miou"] == pytest.approx((3 / 4 + 0) / 2)


def test_empty_matrix_gives_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = scores(np.zeros((3, 3)))
        assert math.isnan(nanmean(np.array([np.nan, np.nan])))
    assert math.isnan(s["miou"]) and math.isnan(s["pixel_acc"]) and math.isnan(s["fwiou"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_torchmetrics_and_sklearn_on_random_data(seed):
    from torchmetrics.classification import MulticlassJaccardIndex

    g = torch.Generator().manual_seed(seed)
    k, ignore = 7, 255
    target = torch.randint(0, k, (4, 33, 47), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.1] = ignore
    # correlated predictions, so IoUs are far from trivial
    pred = torch.where(
        torch.rand(target.shape, generator=g) < 0.6, target.clamp(max=k - 1), torch.randint(0, k, target.shape, generator=g)
    )
    cm = confusion_matrix(pred, target, k, ignore)
    keep = target != ignore
    sk = sk_confusion_matrix(target[keep].numpy(), pred[keep].numpy(), labels=list(range(k)))
    np.testing.assert_array_equal(cm.numpy(), sk)
    tm = MulticlassJaccardIndex(num_classes=k, average="none", ignore_index=ignore)(pred, target)
    np.testing.assert_allclose(scores(cm)["iou"], tm.numpy(), atol=1e-6)
    tm_mean = MulticlassJaccardIndex(num_classes=k, average="macro", ignore_index=ignore)(pred, target)
    assert scores(cm)["miou"] == pytest.approx(float(tm_mean), abs=1e-6)


def test_accumulating_batches_equals_one_pass():
    g = torch.Generator().manual_seed(5)
    pred, target = torch.randint(0, 5, (6, 20, 20), generator=g), torch.randint(0, 6, (6, 20, 20), generator=g)
    meter = ConfusionMatrix(5, ignore_index=5)
    for i in range(0, 6, 2):
        meter.update(pred[i : i + 2], target[i : i + 2])
    np.testing.assert_array_equal(meter.mat.numpy(), confusion_matrix(pred, target, 5, 5).numpy())


def test_per_image_iou_matches_single_image_matrices():
    g = torch.Generator().manual_seed(3)
    pred, target = torch.randint(0, 4, (3, 10, 12), generator=g), torch.randint(0, 4, (3, 10, 12), generator=g)
    target[0][target[0] == 2] = 0  # class 2 absent from image 0's labels ...
    pred[0][pred[0] == 2] = 1  # ... and predictions: NaN for that image only
    per_image = per_image_iou(pred, target, 4, ignore_index=None)
    for b in range(3):
        expected = scores(confusion_matrix(pred[b], target[b], 4))["iou"]
        np.testing.assert_allclose(per_image[b].numpy(), expected, atol=1e-12, equal_nan=True)
    assert math.isnan(per_image[0, 2]) and not math.isnan(per_image[1, 2])
    s = per_image_scores(pred, target, 4)
    assert s["miou"][0] == pytest.approx(scores(confusion_matrix(pred[0], target[0], 4))["miou"])


def test_per_image_scores_of_fully_ignored_image_is_nan():
    target = torch.full((1, 4, 4), 255)
    s = per_image_scores(torch.zeros(1, 4, 4, dtype=torch.long), target, 3, ignore_index=255)
    assert math.isnan(s["pixel_acc"][0]) and math.isnan(s["miou"][0])


def test_topk_correct():
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.8, 0.1, 0.1]])
    assert topk_correct(logits, torch.tensor([2, 0]), (1, 2, 5)) == {1: 1, 2: 2, 5: 2}


@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
def test_one_image_scores_equal_the_batched_ones(dtype):
    from core.evaluation.per_image import image_scores

    rng = np.random.default_rng(5)
    target = rng.integers(0, 7, (40, 50))
    target[rng.random(target.shape) < 0.1] = 255  # void
    pred = rng.integers(0, 6, (40, 50))  # class 6 is never predicted
    pred[:5, :5] = target[:5, :5] = 3
    s = image_scores(pred.astype(dtype), target.astype(dtype), 7, 255)
    batched = per_image_scores(torch.from_numpy(pred)[None], torch.from_numpy(target)[None], 7, 255)
    assert s["pixel_acc"] == pytest.approx(float(batched["pixel_acc"][0]), abs=1e-12)
    assert s["miou"] == pytest.approx(float(batched["miou"][0]), abs=1e-12)
    void = image_scores(pred.astype(dtype), np.full_like(target, 255).astype(dtype), 7, 255)
    assert math.isnan(void["pixel_acc"]) and math.isnan(void["miou"])
