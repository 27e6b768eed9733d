"""What a session is built from, for the issue-30 options: the training transform at each --resize-stages stage,
the stage arithmetic, the automatic rare classes of --rare-crop, and the refusals of options that cannot be honoured."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from core.data import get_dataset
from core.tasks import ClassificationTask, SegmentationTask
from core.train.config import TrainConfig, build_parser, config_from_args, parse_resize_stages, stage_factor
from core.train.optim import rare_classes
from core.train.setup import check_options, class_statistics, train_transform


def _sample(h: int = 360, w: int = 480) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    image = tv_tensors.Image(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.randint(0, 11, (h, w)))
    return image, mask


@pytest.mark.parametrize(("factor", "crop"), [(0.5, (144, 192)), (0.75, (216, 288)), (1.0, (288, 384))])
def test_each_stage_trains_on_crops_at_its_size(factor: float, crop: tuple[int, int]) -> None:
    cfg = TrainConfig(size=(360, 480), crop=(288, 384), scale=(0.75, 1.25), resize_stages="0.5x1,0.75x1,1x1", epochs=3)
    ds = get_dataset("synthstreets", "train", num_images=1, size=(24, 32))
    tf = train_transform(cfg, SegmentationTask, ds, factor=factor)
    torch.manual_seed(0)
    for _ in range(3):
        image, mask = tf(*_sample())
        assert image.shape == (3, *crop) and image.dtype == torch.float32
        assert mask.shape == crop and mask.dtype == torch.int64
    # the rescale range follows the base size: at 0.5 the short side is drawn from [0.75, 1.25] x 180
    resize = next(op for op in tf.transforms if type(op).__name__ == "RandomResize")
    assert (resize.min_size, resize.max_size) == (round(360 * factor * 0.75), round(360 * factor * 1.25) + 1)


def test_downscaled_masks_stay_labels() -> None:
    cfg = TrainConfig(size=(40, 60), crop=None, scale=None, hflip=0.0)
    ds = get_dataset("synthstreets", "train", num_images=1, size=(40, 60))
    image, mask = ds.load(0)
    sample = (tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)), tv_tensors.Mask(torch.from_numpy(mask)))
    _, half = train_transform(cfg, SegmentationTask, ds, factor=0.5)(*sample)
    assert half.shape == (20, 30)
    assert torch.equal(half, torch.from_numpy(mask)[::2, ::2])  # nearest neighbour: every label a real one, none blended


def test_stage_arithmetic() -> None:
    assert parse_resize_stages("0.5x50,1x15") == [(0.5, 50), (1.0, 15)]
    stages = parse_resize_stages(" 0.5x2, 0.75x1 ,1x1")
    assert [stage_factor(stages, e) for e in (1, 2, 3, 4, 5)] == [0.5, 0.5, 0.75, 1.0, 1.0]
    assert stage_factor([], 7) == 1.0
    for bad in ("0.5", "0.5x", "x3", "0x3", "0.5x0", "0.5x2;1x1", "half x2"):
        with pytest.raises(ValueError, match="FACTORxEPOCHS"):
            parse_resize_stages(bad)


def test_bad_stage_combinations_are_refused() -> None:
    ok = dict(size=(48, 64), resize_stages="0.5x2,1x1", epochs=3)
    check_options(TrainConfig(**ok), SegmentationTask)
    with pytest.raises(ValueError, match="covers 3 epochs but the run trains 4"):
        check_options(TrainConfig(**{**ok, "epochs": 4}), SegmentationTask)
    with pytest.raises(ValueError, match="--budget-min the number of epochs is not known"):
        check_options(TrainConfig(**ok, budget_min=5.0), SegmentationTask)
    with pytest.raises(ValueError, match="give --size"):
        check_options(TrainConfig(**{**ok, "size": None}), SegmentationTask)
    with pytest.raises(ValueError, match="a classification model cannot use it"):
        check_options(TrainConfig(**ok), ClassificationTask)


def test_rare_classes_from_a_frequency_table() -> None:
    counts = np.array([500.0, 300.0, 10.0, 0.0, 150.0, 25.0, 15.0])  # shares 0.5, 0.3, 0.01, 0, 0.15, 0.025, 0.015
    assert rare_classes(counts, 0.02) == [2, 6]  # class 3 is never seen: absent, not rare
    assert rare_classes(counts, 0.03) == [2, 5, 6]
    assert rare_classes(np.zeros(3), 0.02) == []


def test_rare_classes_and_class_weights_come_from_one_pass(monkeypatch) -> None:
    class Labels:  # four 100-pixel label maps: class 1 on 2 pixels, class 2 on 1, class 0 on the rest
        task, num_classes, ignore_index = SegmentationTask, 3, 255

        def __len__(self) -> int:
            return 4

        def load(self, i: int):
            mask = np.zeros(100, dtype=np.int64)
            mask[: [2, 1, 0, 0][i]] = [1, 2, 0, 0][i]
            return None, mask

    loads = []
    ds = Labels()
    monkeypatch.setattr(Labels, "load", lambda self, i, f=Labels.load: loads.append(i) or f(self, i))
    weights, rare = class_statistics(TrainConfig(class_weighting="median", rare_crop=0.5), ds, progress=False)
    assert rare == [1, 2] and len(weights) == 3 and loads == [0, 1, 2, 3]  # one pass for both
    loads.clear()
    assert class_statistics(TrainConfig(class_weighting="none", rare_crop=0.5, rare_classes=[2]), ds, False) == (None, [2])
    assert class_statistics(TrainConfig(class_weighting="none"), ds, False) == (None, None) and loads == []
    with pytest.raises(ValueError, match=r"--rare-classes takes class indices in \[0, 3\)"):
        class_statistics(TrainConfig(rare_crop=0.5, rare_classes=[5]), ds, False)


def test_bad_rare_crop_options_are_refused() -> None:
    with pytest.raises(ValueError, match="give --rare-crop P"):
        check_options(TrainConfig(rare_classes=[2]), SegmentationTask)
    with pytest.raises(ValueError, match="a classification model has none"):
        check_options(TrainConfig(rare_crop=0.5), ClassificationTask)
    with pytest.raises(ValueError, match="give --crop H W"):
        check_options(TrainConfig(rare_crop=0.5, scale=None, crop=None), SegmentationTask)
    with pytest.raises(ValueError, match="probability in"):
        check_options(TrainConfig(rare_crop=2.0), SegmentationTask)


def test_the_command_line_fills_every_new_option() -> None:
    args = ["--resize-stages", "0.5x2,1x1", "--epochs", "3", "--rare-crop", "0.5", "--rare-classes", "2,6,7"]
    args += ["--loss", "ohem", "--ohem-thresh", "0.6", "--ohem-min-kept", "5000", "--tta-scales", "0.75,1,1.25"]
    cfg = config_from_args(build_parser().parse_args(args))
    assert cfg.resize_stages == "0.5x2,1x1" and cfg.epochs == 3 and cfg.rare_crop == 0.5 and cfg.rare_classes == [2, 6, 7]
    assert (cfg.loss, cfg.ohem_thresh, cfg.ohem_min_kept, cfg.tta_scales) == ("ohem", 0.6, 5000, [0.75, 1.0, 1.25])
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # what run.json records rebuilds the same configuration
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.loss, defaults.rare_crop, defaults.rare_classes, defaults.resize_stages, defaults.tta_scales) == (
        "ce",
        0.0,
        None,
        None,
        None,
    )
