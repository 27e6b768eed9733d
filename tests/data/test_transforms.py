"""The rare-class crop (``--rare-crop``): it finds a tiny blob every time at p = 1, is the plain crop at p = 0,
pads with void like the plain crop, and moves image and mask together without resampling labels."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from core.data.transforms import AugmentConfig, RareClassCrop, train_transforms

VOID, RARE = 11, 7
FILL = {tv_tensors.Image: 0, tv_tensors.Mask: VOID}


def blob_scene(h: int = 64, w: int = 96) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """Class 3 everywhere but a 2 x 2 blob of class 7 near the top edge; the image's first channel
    holds 10 x the label and the second the column, so a crop shows whether image and mask moved together."""
    mask = torch.full((h, w), 3, dtype=torch.int64)
    mask[5:7, 2 * w // 3 : 2 * w // 3 + 2] = RARE
    image = torch.stack([mask * 10, torch.arange(w).expand(h, w) % 256, torch.zeros(h, w, dtype=torch.int64)]).to(torch.uint8)
    return tv_tensors.Image(image), tv_tensors.Mask(mask)


def test_every_crop_holds_the_rare_blob_at_p_1() -> None:
    image, mask = blob_scene()
    crop = RareClassCrop((16, 24), classes=[RARE, 9], p=1.0, fill=FILL)
    torch.manual_seed(0)
    lefts = set()
    for _ in range(200):
        out_image, out_mask = crop(image, mask)
        assert out_mask.shape == (16, 24) and (out_mask == RARE).any()
        assert torch.equal(out_image[0].long(), out_mask.long() * 10)  # image and mask cut at the same place
        lefts.add(int(out_image[1, 0, 0]))
    assert len(lefts) > 5  # jittered, not one fixed window


def test_p_0_is_the_plain_random_crop() -> None:
    image, mask = blob_scene()
    rare = RareClassCrop((16, 24), classes=[RARE], p=0.0, fill=FILL)
    plain = v2.RandomCrop((16, 24), pad_if_needed=True, fill=FILL)
    torch.manual_seed(1)
    ours = [rare(image, mask) for _ in range(20)]
    torch.manual_seed(1)
    theirs = [plain(image, mask) for _ in range(20)]
    for (a_image, a_mask), (b_image, b_mask) in zip(ours, theirs):
        assert torch.equal(a_image, b_image) and torch.equal(a_mask, b_mask)
    assert sum(bool((m == RARE).any()) for _, m in ours) < 10  # the plain crop mostly misses the blob


def test_no_rare_class_present_falls_back_to_the_plain_crop() -> None:
    image, mask = blob_scene()
    rare = RareClassCrop((16, 24), classes=[9], p=1.0, fill=FILL)
    plain = v2.RandomCrop((16, 24), pad_if_needed=True, fill=FILL)
    for seed in range(5):
        torch.manual_seed(seed)
        a = rare(image, mask)
        torch.manual_seed(seed)
        b = plain(image, mask)
        assert torch.equal(a[1], b[1])


def test_small_images_are_padded_with_void_and_keep_the_blob() -> None:
    image, mask = blob_scene(10, 14)  # smaller than the crop: padded as RandomCrop(pad_if_needed=True) pads
    crop = RareClassCrop((16, 24), classes=[RARE], p=1.0, fill=FILL)
    torch.manual_seed(2)
    for _ in range(20):
        out_image, out_mask = crop(image, mask)
        assert out_mask.shape == (16, 24) and (out_mask == RARE).sum() == 4  # the whole blob: nothing resampled
        assert (out_mask == VOID).sum() == 16 * 24 - 10 * 14 and set(out_mask.unique().tolist()) == {3, RARE, VOID}
        assert (out_image[:, out_mask == VOID] == 0).all()


def test_train_transforms_use_it_only_when_asked() -> None:
    def crops(**augment) -> list[str]:
        tf = train_transforms(
            size=(32, 48), augment=AugmentConfig(crop=(16, 24), **augment), mean=(0.5,) * 3, std=(0.5,) * 3, ignore_index=VOID
        )
        return [type(op).__name__ for op in tf.transforms if "Crop" in type(op).__name__]

    assert crops() == ["RandomCrop"]  # the default pipeline is unchanged
    assert crops(rare_crop=0.5, rare_classes=[RARE]) == ["RareClassCrop"]
    with pytest.raises(ValueError, match="needs its rare classes"):
        crops(rare_crop=0.5)
    with pytest.raises(ValueError, match="probability must be in"):
        RareClassCrop((4, 4), classes=[1], p=1.5, fill=FILL)
