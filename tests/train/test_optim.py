import numpy as np
import pytest
import torch

from core.models import get_model, list_models, model_args
from core.train.optim import class_pixel_counts, class_weights, init_weights, schedule_factor


def test_class_weights_inverse_and_median():
    masks = [np.array([[0, 0, 0, 1]]), np.array([[0, 0, 2, 2]])]
    counts, image_pixels = class_pixel_counts(masks, 4)
    np.testing.assert_array_equal(counts, [5, 1, 2, 0])
    np.testing.assert_array_equal(image_pixels, [8, 4, 4, 0])
    inv = class_weights(counts, image_pixels, "inverse")
    assert inv.sum() == pytest.approx(1.0) and inv[3] == 0
    assert inv[1] / inv[0] == pytest.approx(5.0)  # proportional to 1 / frequency
    med = class_weights(counts, image_pixels, "median")
    freq = np.array([5 / 8, 1 / 4, 2 / 4])
    np.testing.assert_allclose(med[:3], np.median(freq) / freq)
    assert med[3] == 0 and class_weights(counts, image_pixels, "none") is None
    np.testing.assert_allclose(class_weights(counts, image_pixels, "median", power=0.5), np.sqrt(med))
    soft = class_weights(counts, image_pixels, "inverse", power=0.5)
    assert soft.sum() == pytest.approx(1.0) and soft[1] / soft[0] == pytest.approx(np.sqrt(5.0))


def test_schedules():
    assert schedule_factor("cosine", 0.0) == pytest.approx(1.0)
    assert schedule_factor("cosine", 0.5) == pytest.approx(0.5)
    assert schedule_factor("cosine", 1.0) == pytest.approx(0.0, abs=1e-9)
    assert schedule_factor("cosine", 0.05, warmup=0.1) == pytest.approx(0.5)
    assert schedule_factor("step", 0.65, step_every=0.3, gamma=0.1) == pytest.approx(0.01)
    assert schedule_factor("none", 0.7) == 1.0
    assert schedule_factor("onecycle", 0.3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="valid: cosine"):
        schedule_factor("linear", 0.1)


def test_init_skips_pretrained_and_flagged_modules():
    model = get_model("unet", num_classes=3, base_width=4, depth=2)
    model.down[0][0].pretrained_weights = True  # as core.models.pretrained.load_pretrained flags loaded modules
    model.classifier.keep_init = True
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n = init_weights(model, "xavier")
    after = model.state_dict()
    assert n > 0
    assert torch.equal(before["down.0.0.weight"], after["down.0.0.weight"])
    assert torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert not torch.equal(before["down.1.0.weight"], after["down.1.0.weight"])


SMALL = {"width_mult": 0.125, "base_width": 4}  # whichever of these a builder takes


def _small_model(name: str) -> torch.nn.Module:
    accepted = model_args(name, num_classes=3)
    return get_model(name, num_classes=3, **{k: v for k, v in SMALL.items() if k in accepted})


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("scheme", ["xavier", "kaiming"])
def test_init_reinitialises_every_layer_of_every_model_built_without_pretrained_weights(name, scheme):
    """Defect: backbones were skipped even when no ImageNet weights had been loaded into them."""
    model = _small_model(name)
    layers = {
        n: m for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))
    }
    kept = {n for n, m in layers.items() if getattr(m, "keep_init", False)}  # bilinear upsampling by design
    for m in layers.values():
        torch.nn.init.constant_(m.weight, 0.123)  # a value no initialiser produces
    assert init_weights(model, scheme) == len(layers) - len(kept)
    for n, m in layers.items():
        assert torch.all(m.weight == 0.123).item() == (n in kept), n
        if n not in kept and m.bias is not None:
            assert torch.all(m.bias == 0).item(), n
