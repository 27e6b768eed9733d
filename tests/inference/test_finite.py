"""The Predictor's check that a model's logits are finite: quick on big maps, and exact."""

import torch

from core.inference.predictor import all_finite


def test_all_finite_is_exact_for_nan_inf_and_sums_that_overflow():
    x = torch.randn(1, 19, 64, 128)
    assert all_finite(x)
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = x.clone()
        y[0, 3, 5, 7] = bad
        assert not all_finite(y)
    y = x.clone()
    y[0, :2, 0, 0] = torch.tensor([float("inf"), -float("inf")])  # their sum is NaN, and they are not finite
    assert not all_finite(y)
    huge = torch.full((1, 19, 64, 128), 3e38)  # every value finite, their float32 sum is not
    assert not torch.isfinite(huge.sum()) and all_finite(huge)
