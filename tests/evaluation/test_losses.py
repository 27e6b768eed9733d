"""Lovász-softmax and OHEM cross-entropy against hand-computed cases and a loop written from the paper, and the
task criterion that combines them (``--loss``)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.evaluation.losses import hard_pixels, lovasz_softmax, ohem_cross_entropy
from core.tasks import ClassificationTask, SegmentationTask, check_loss

IGNORE = 255


def reference_lovasz(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Berman et al., Algorithm 1, one class at a time over plain Python lists: probs (N, K), labels (N,)."""
    losses = []
    for c in range(probs.shape[1]):
        fg = [1.0 if int(y) == c else 0.0 for y in labels]
        if sum(fg) == 0:
            continue  # classes="present"
        errors = [abs(f - float(p)) for f, p in zip(fg, probs[:, c])]
        order = sorted(range(len(errors)), key=lambda i: -errors[i])
        gts, fn, fp, previous, loss = sum(fg), 0.0, 0.0, 0.0, 0.0
        for i in order:  # the Jaccard loss of the errors so far, one more at a time
            fn, fp = fn + fg[i], fp + 1 - fg[i]
            jaccard = 1 - (gts - fn) / (gts + fp)
            loss += errors[i] * (jaccard - previous)
            previous = jaccard
        losses.append(loss)
    return sum(losses) / len(losses)


def sorted_lovasz(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Algorithm 1 with torch.sort, as the authors' code computes it, for gradients: logits (B, K, H, W), all labelled."""
    probs = logits.softmax(1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])  # (N, K)
    labels = target.reshape(-1)
    losses = []
    for c in labels.unique():
        fg = (labels == c).float()
        errors, order = (fg - probs[:, c]).abs().sort(descending=True)
        gt = fg[order]
        jaccard = 1 - (gt.sum() - gt.cumsum(0)) / (gt.sum() + (1 - gt).cumsum(0))
        losses.append((errors * torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])).sum())
    return torch.stack(losses).mean()


def _two_class_logits(p_true: list[float], labels: list[int]) -> torch.Tensor:
    """(1, 2, 1, N) logits whose softmax gives each pixel's true class (0 for ignored pixels) probability p."""
    cols = []
    for p, y in zip(p_true, labels):
        first = p if y in (0, IGNORE) else 1 - p
        cols.append([math.log(first), math.log(1 - first)])
    return torch.tensor(cols).T[None, :, None, :]


def test_lovasz_hand_computed_two_pixels() -> None:
    # pixel 0 is class 0 with p = (0.8, 0.2), pixel 1 is class 1 with p = (0.3, 0.7)
    # class 0: errors (0.2, 0.3), sorted gt (0, 1): Jaccard losses (1/2, 1), gradient (1/2, 1/2) -> 0.25
    # class 1: errors (0.2, 0.3), sorted gt (1, 0): Jaccard losses (1, 1), gradient (1, 0) -> 0.3
    logits = torch.tensor([[0.8, 0.3], [0.2, 0.7]]).log()[None, :, None, :]  # (1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    assert lovasz_softmax(logits, target, ignore_index=IGNORE).item() == pytest.approx((0.25 + 0.3) / 2, abs=1e-6)


def test_lovasz_perfect_prediction_is_zero_and_wrong_is_large() -> None:
    target = torch.randint(0, 4, (2, 6, 7), generator=torch.Generator().manual_seed(0))
    perfect = F.one_hot(target, 4).permute(0, 3, 1, 2).float() * 50  # (B, K, H, W)
    assert lovasz_softmax(perfect, target, ignore_index=IGNORE).item() == pytest.approx(0.0, abs=1e-6)
    assert lovasz_softmax(-perfect, target, ignore_index=IGNORE).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_matches_the_papers_algorithm(per_image: bool) -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 5, 4, 6, generator=g)
    target = torch.randint(0, 5, (3, 4, 6), generator=g)
    target[0, :2] = IGNORE
    target[1] = torch.where(target[1] == 4, 0, target[1])  # a class absent from one image
    probs = logits.softmax(1).permute(0, 2, 3, 1)  # (B, H, W, K)
    valid = target != IGNORE
    if per_image:
        expected = sum(reference_lovasz(probs[b][valid[b]], target[b][valid[b]]) for b in range(3)) / 3
    else:
        expected = reference_lovasz(probs[valid], target[valid])
    got = lovasz_softmax(logits, target, ignore_index=IGNORE, per_image=per_image).item()
    assert got == pytest.approx(expected, abs=1e-6)


def test_lovasz_gradient_is_the_papers_and_ties_keep_the_value() -> None:
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 6, 7, generator=g, requires_grad=True)
    target = torch.randint(0, 4, (2, 6, 7), generator=g)
    lovasz_softmax(logits, target, ignore_index=IGNORE).backward()
    ours = logits.grad.clone()
    logits.grad = None
    sorted_lovasz(logits, target).backward()
    torch.testing.assert_close(ours, logits.grad, atol=1e-6, rtol=1e-5)
    # many exactly tied errors (a coarse grid of logits): the value does not depend on how ties are ordered
    tied = (torch.randn(2, 4, 6, 7, generator=g) * 2).round()
    expected = reference_lovasz(tied.softmax(1).permute(0, 2, 3, 1).reshape(-1, 4), target.reshape(-1))
    assert lovasz_softmax(tied, target, ignore_index=IGNORE).item() == pytest.approx(expected, abs=1e-4)


def test_lovasz_is_close_to_exact_on_a_camvid_sized_crop() -> None:
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(1, 11, 96, 128, generator=g) * 3
    target = torch.randint(0, 11, (1, 96, 128), generator=g)
    exact = sorted_lovasz(logits, target).item()
    assert lovasz_softmax(logits, target, ignore_index=IGNORE).item() == pytest.approx(exact, abs=1e-4)


def test_lovasz_ignores_void_pixels_and_passes_gradients() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 5, 5, generator=g, requires_grad=True)
    target = torch.randint(0, 3, (2, 5, 5), generator=g)
    target[:, :, :2] = IGNORE
    loss = lovasz_softmax(logits, target, ignore_index=IGNORE)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[..., 2:].abs().sum() > 0
    assert not logits.grad[..., :2].any()  # void pixels take no part
    other = logits.detach().clone()
    other[..., :2] = torch.randn(2, 3, 5, 2, generator=g) * 10
    assert lovasz_softmax(other, target, ignore_index=IGNORE).item() == pytest.approx(loss.item(), abs=1e-6)
    all_void = torch.full_like(target, IGNORE)
    assert lovasz_softmax(logits, all_void, ignore_index=IGNORE).item() == 0.0
    assert lovasz_softmax(logits, all_void, ignore_index=IGNORE, per_image=True).item() == 0.0


def test_ohem_keeps_exactly_the_hard_pixels() -> None:
    labels = [0, 0, 1, IGNORE]
    logits = _two_class_logits([0.9, 0.6, 0.2, 0.1], labels)  # p(true) of the labelled pixels: 0.9, 0.6, 0.2
    target = torch.tensor(labels)[None, None, :]  # (1, 1, 4)

    def kept(thresh: float, min_kept: int) -> list[int]:
        keep = hard_pixels(logits, target, ignore_index=IGNORE, thresh=thresh, min_kept=min_kept)
        return keep[0, 0].nonzero().flatten().tolist()

    assert kept(0.7, 1) == [1, 2]  # below the threshold
    assert kept(0.7, 2) == [1, 2]
    assert kept(0.5, 2) == [1, 2]  # only pixel 2 is below 0.5: the two least confident instead
    assert kept(0.5, 1) == [2]
    assert kept(0.7, 3) == [0, 1, 2]  # min_kept above the labelled pixels: all of them, never the void one
    assert kept(0.7, 100) == [0, 1, 2]
    loss = ohem_cross_entropy(logits, target, ignore_index=IGNORE, thresh=0.7, min_kept=1)
    assert loss.item() == pytest.approx((-math.log(0.6) - math.log(0.2)) / 2, rel=1e-5)


def test_ohem_with_every_pixel_kept_is_weighted_cross_entropy() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 3, 5, generator=g, requires_grad=True)
    target = torch.randint(0, 4, (2, 3, 5), generator=g)
    target[0, 0] = IGNORE
    weight = torch.tensor([1.0, 2.0, 0.5, 3.0])
    ohem = ohem_cross_entropy(logits, target, ignore_index=IGNORE, thresh=1.0, min_kept=10**6, weight=weight, label_smoothing=0.1)
    ce = F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE, label_smoothing=0.1)
    assert ohem.item() == pytest.approx(ce.item(), rel=1e-5)
    ohem.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_task_criterion_sums_its_terms_and_keeps_the_aux_head() -> None:
    g = torch.Generator().manual_seed(4)
    out, aux = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    target = torch.randint(0, 3, (2, 4, 4), generator=g)
    weight = torch.tensor([1.0, 2.0, 3.0])
    ce = SegmentationTask(3, IGNORE, weight, 0.4)
    lovasz = SegmentationTask(3, IGNORE, weight, 0.4, loss="lovasz")
    both = SegmentationTask(3, IGNORE, weight, 0.4, loss="ce+lovasz")
    for output in ({"out": out}, {"out": out, "aux": aux}):
        expected = ce.loss(output, target) + lovasz.loss(output, target)
        assert both.loss(output, target).item() == pytest.approx(expected.item(), rel=1e-6)
    lv = lovasz_softmax(out, target, ignore_index=IGNORE) + 0.4 * lovasz_softmax(aux, target, ignore_index=IGNORE)
    assert lovasz.loss({"out": out, "aux": aux}, target).item() == pytest.approx(lv.item(), rel=1e-6)  # unweighted
    ohem = SegmentationTask(3, IGNORE, weight, 0.4, loss="ohem", ohem_thresh=0.5, ohem_min_kept=3)
    expected = ohem_cross_entropy(out, target, ignore_index=IGNORE, thresh=0.5, min_kept=3, weight=weight)
    assert ohem.loss({"out": out}, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_bad_loss_options_are_refused() -> None:
    with pytest.raises(
        ValueError, match="--loss lovasz is for segmentation models; a classification model trains with --loss ce"
    ):
        ClassificationTask(3, -1, loss="lovasz")
    with pytest.raises(ValueError, match="unknown --loss 'dice'"):
        check_loss(SegmentationTask, "dice")
    with pytest.raises(ValueError, match="--lovasz-per-image applies to --loss lovasz or ce\\+lovasz"):
        check_loss(SegmentationTask, "ohem", lovasz_per_image=True)
    with pytest.raises(ValueError, match="--ohem-thresh and --ohem-min-kept apply to --loss ohem"):
        check_loss(SegmentationTask, "ce", ohem_thresh=0.5)
    with pytest.raises(ValueError, match="--ohem-thresh must be in"):
        check_loss(SegmentationTask, "ohem", ohem_thresh=0.0)
    check_loss(SegmentationTask, "ce+lovasz", lovasz_per_image=True)


def test_a_run_trains_with_the_chosen_loss_and_records_it(tmp_path, capsys) -> None:
    from core.runs import load_run
    from core.train import main as train_main
    from tests.train.test_train import TINY

    out = tmp_path / "run"
    args = ["--data-opt", "num_images=4", "--epochs", "1", "--loss", "ce+lovasz", "--lovasz-per-image", "--out", str(out)]
    assert train_main(TINY + args) == 0
    run = load_run(out)
    assert run.config["train"]["loss"] == "ce+lovasz" and run.config["train"]["lovasz_per_image"] is True
    assert math.isfinite(run.history[0]["train_loss"])
    bad = ["--arch", "small_cnn", "--dataset", "crops:synthstreets", "--size", "16", "16", "--loss", "ohem"]
    assert train_main(bad + ["--out", str(tmp_path / "cls"), "--no-progress"]) == 2
    assert "--loss ohem is for segmentation models" in capsys.readouterr().err
    assert not (tmp_path / "cls").exists()  # refused before any data is read or any folder made
