"""upsampled_labels: the argmax of bilinearly resized logits, resizing only the pixels whose label is in question;
labels_and_confidence: the argmax and the top softmax probability of resized logits."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.inference import upsample
from core.inference.upsample import labels_and_confidence, upsampled_labels


def reference(logits: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's resize of every map, its argmax, and each pixel's gap between its two largest resized logits."""
    up = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]  # (K, H, W)
    top2 = up.topk(2, dim=0).values  # (2, H, W)
    return up.argmax(0), top2[0] - top2[1]


def smooth_logits(k: int, h: int, w: int, seed: int) -> torch.Tensor:
    """(K, h, w) logits of regions, as a trained model gives: a coarse random grid resized up."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, k, max(1, h // 16), max(1, w // 16), generator=g) * 4
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]


def test_a_hand_computed_row_with_a_tie_takes_the_first_class():
    # pixels (class 0: [3, 0]) and (class 1: [0, 1]) resized from 2 to 4 columns: the source columns are
    # 0 (clamped), 0.25, 0.75 and 1 (clamped); at 0.75 both classes score 0.25 * 3 = 0.75 * 1 (a tie: class 0)
    logits = torch.tensor([[[3.0, 0.0]], [[0.0, 1.0]]])  # (K=2, h=1, w=2)
    assert upsampled_labels(logits, (1, 4)).tolist() == [[0, 0, 0, 1]]
    assert reference(logits, (1, 4))[0].tolist() == [[0, 0, 0, 1]]


@pytest.mark.parametrize(
    "k, low, size",
    [
        (19, (40, 60), (123, 181)),  # up by a non-integer factor
        (19, (64, 128), (128, 256)),  # up by 2, as a 512x1024 model on a 1024x2048 image
        (7, (50, 70), (31, 43)),  # down
        (3, (1, 9), (4, 20)),  # one source row
        (5, (24, 32), (24, 32)),  # the same size: the argmax
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_labels_match_resizing_every_map_except_at_rounding_level_ties(k, low, size, channels_last, monkeypatch):
    logits = smooth_logits(k, *low, seed=k + size[0])
    if channels_last:  # the layout the Predictor's models give
        logits = logits[None].contiguous(memory_format=torch.channels_last)[0]
    want, gap = reference(logits, size)
    monkeypatch.setattr(upsample, "_resized", lambda *a: pytest.fail("smooth logits took the whole-map road"))
    got = upsampled_labels(logits, size)
    assert got.shape == size and got.dtype == torch.int64
    differ = got != want
    assert (gap[differ] < 1e-5).all(), f"{int(differ.sum())} labels differ beyond a rounding-level tie"
    assert differ.float().mean() < 1e-3


def test_noisy_logits_resize_every_map(monkeypatch):
    logits = torch.randn(11, 30, 40, generator=torch.Generator().manual_seed(0))  # no two neighbours agree
    calls = []
    real = upsample._resized
    monkeypatch.setattr(upsample, "_resized", lambda *a: calls.append(1) or real(*a))
    got = upsampled_labels(logits, (75, 100))
    assert calls == [1]
    assert torch.equal(got, reference(logits, (75, 100))[0])


def _laid_out(logits: torch.Tensor, layout: str) -> torch.Tensor:
    """(K, h, w) logits stored class by class, or channels-last as a model's batch gives them (each pixel's K
    values side by side: the other code path)."""
    return logits if layout == "classes" else logits[None].contiguous(memory_format=torch.channels_last)[0]


@pytest.mark.parametrize("layout", ["classes", "channels_last"])
@pytest.mark.parametrize("size", [(1, 4), (1, 2)])
def test_labels_and_confidence_of_a_hand_computed_row(layout, size):
    # the row above: resized logits [3, 2.25, 0.75, 0] (class 0) and [0, 0.25, 0.75, 1] (class 1); the tie at the third
    # pixel goes to class 0 with probability 1/2, the others 1 / (1 + e^-3), 1 / (1 + e^-2), 1 / (1 + e^-1)
    logits = torch.tensor([[[3.0, 0.0]], [[0.0, 1.0]]])  # (K=2, h=1, w=2)
    if size == (1, 2):  # not resized: the same values at the logits' own size, the tie as it is
        logits = torch.tensor([[[0.75, 3.0]], [[0.75, 1.0]]])
    labels, conf = labels_and_confidence(_laid_out(logits, layout), size)
    if size == (1, 2):
        assert labels.tolist() == [[0, 0]]
        assert conf[0].tolist() == pytest.approx([0.5, 1 / (1 + math.exp(-2))], abs=1e-6)
        return
    assert labels.tolist() == [[0, 0, 0, 1]]
    want = [1 / (1 + math.exp(-3)), 1 / (1 + math.exp(-2)), 0.5, 1 / (1 + math.exp(-1))]
    assert conf[0].tolist() == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("layout", ["classes", "channels_last"])
@pytest.mark.parametrize("k, low, size", [(11, (45, 60), (45, 60)), (19, (40, 60), (123, 181)), (7, (50, 70), (31, 43))])
def test_labels_and_confidence_are_the_argmax_and_top_softmax_of_the_resized_logits(k, low, size, layout):
    logits = torch.randn(k, *low, generator=torch.Generator().manual_seed(k)) * 3
    up = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]  # (K, H, W)
    labels, conf = labels_and_confidence(_laid_out(logits, layout), size)
    assert torch.equal(labels, up.argmax(0))
    assert torch.allclose(conf, up.softmax(0).amax(0), atol=1e-6)
