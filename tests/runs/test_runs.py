import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from core.inference import Predictor, to_rgb_array
from core.runs import RunError, discover_runs, load_run, save_weights
from core.utils.io import atomic_write, atomic_write_json


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_json(target, {"v": 1})

    def fail(tmp):
        with open(tmp, "w") as f:
            f.write('{"v": 2, "half')
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"], "no temporary file left behind"


def test_json_is_strict_with_nan_as_null(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": float("nan"), "b": np.float32(0.5), "c": (1, 2)})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": 0.5, "c": [1, 2]}


def test_discover_reports_broken_runs_and_keeps_going(tiny_seg_run, tmp_path):
    good = tiny_seg_run[0]
    shutil.copytree(good, tmp_path / "good")
    (tmp_path / "bad_json").mkdir()
    (tmp_path / "bad_json" / "run.json").write_text("{oops")
    (tmp_path / "old_format").mkdir()
    (tmp_path / "old_format" / "run.json").write_text(json.dumps({"format": 99}))
    (tmp_path / "no_weights").mkdir()
    cfg = json.loads((good / "run.json").read_text())
    (tmp_path / "no_weights" / "run.json").write_text(json.dumps(cfg))
    (tmp_path / "not_a_run").mkdir()  # ignored silently
    runs, problems = discover_runs(tmp_path)
    assert [r.name for r in runs] == ["good"]
    reasons = {p.name: why for p, why in problems}
    assert set(reasons) == {"bad_json", "old_format", "no_weights"}
    assert "not valid JSON" in reasons["bad_json"] and "format 99" in reasons["old_format"]
    assert reasons["no_weights"] == "training, no weights yet"
    assert discover_runs(tmp_path / "missing")[1][0][1] == "not a directory"


def test_damaged_or_incompatible_weights_are_clear_errors(tiny_seg_run, tmp_path):
    run_dir = tmp_path / "r"
    shutil.copytree(tiny_seg_run[0], run_dir)
    (run_dir / "weights" / "epoch_0001.safetensors").write_bytes(b"\x00garbage")
    run = load_run(run_dir)
    with pytest.raises(RunError, match="damaged or unreadable"):
        run.build_model(1)
    with pytest.raises(RunError, match=r"no weights for epoch 7; saved epochs: \[1, 2\]"):
        run.build_model(7)
    cfg = json.loads((run_dir / "run.json").read_text())
    cfg["model"]["args"]["base_width"] = 8  # weights no longer fit
    (run_dir / "run.json").write_text(json.dumps(cfg))
    with pytest.raises(RunError, match="incompatible"):
        load_run(run_dir).build_model(2)
    cfg["model"]["args"]["no_such_arg"] = 1
    (run_dir / "run.json").write_text(json.dumps(cfg))
    with pytest.raises(RunError, match="no_such_arg"):
        load_run(run_dir).build_model(2)


def test_predictor_accepts_any_size_and_format(tiny_seg_run):
    predictor = Predictor(tiny_seg_run[0], epoch="last", device="cpu")
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (37, 91, 3), dtype=np.uint8))
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    rgba_float = rng.random((50, 40, 4)).astype(np.float32)
    preds = predictor.predict([rgb, grey, rgba_float])
    assert [p.labels.shape for p in preds] == [(37, 91), (20, 30), (50, 40)]
    assert all(p.probs.shape[0] == 11 and np.isfinite(p.entropy()).all() for p in preds)
    with pytest.raises(ValueError, match="expected an \\(H, W, 3\\) image"):
        predictor.predict([np.zeros((4, 4, 7), np.uint8)])
    with pytest.raises(ValueError, match="PIL image or a numpy array"):
        predictor.predict(["/etc/passwd"])


def test_exif_orientation_is_applied():
    im = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    im.info["exif"] = exif.tobytes()
    import io

    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif.tobytes())
    loaded = Image.open(io.BytesIO(buf.getvalue()))
    assert to_rgb_array(loaded).shape == (20, 10, 3)


def test_atomic_files_get_normal_permissions(tmp_path):
    import os
    import stat

    atomic_write_json(tmp_path / "a.json", {})
    save_weights(tmp_path / "w.safetensors", {"w": torch.zeros(2)}, {})  # safetensors' own writer too
    umask = os.umask(0)
    os.umask(umask)
    for name in ("a.json", "w.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_shipped_float16_snapshots_agree_with_float32(tiny_seg_run, tmp_path):
    """A run stored as float16 (python -m core.runs.ship) predicts the same labels as its float32 original."""
    from core.data import get_dataset
    from core.inference import Predictor
    from core.runs.ship import main as ship_main

    shipped = tmp_path / "shipped"
    shutil.copytree(tiny_seg_run[0], shipped)
    assert ship_main([str(shipped)]) == 0
    from safetensors import safe_open

    with safe_open(shipped / "weights" / "epoch_0002.safetensors", "pt") as f:
        assert all(f.get_tensor(k).dtype in (torch.float16, torch.int64) for k in f.keys())
    assert not (shipped / "state").exists() and not (shipped / "weights" / "last.safetensors").exists()
    ds = get_dataset("synthstreets", "val", num_images=8, size=(48, 64))
    images = [ds.load(i)[0] for i in range(8)]
    full, half = Predictor(load_run(tiny_seg_run[0]), 2, device="cpu"), Predictor(load_run(shipped), 2, device="cpu")
    assert next(half.model.parameters()).dtype == torch.float32  # loaded back as float32
    agree = np.mean([(a.labels == b.labels).mean() for a, b in zip(full.predict(images), half.predict(images))])
    assert agree >= 0.999


def test_ship_says_which_folder_is_not_a_run_and_ships_the_others(tiny_seg_run, tmp_path, capsys):
    from core.runs.ship import main as ship_main

    good, bad = tmp_path / "good", tmp_path / "no-run"
    shutil.copytree(tiny_seg_run[0], good)
    bad.mkdir()
    assert ship_main([str(bad), str(good)]) == 1
    out, err = capsys.readouterr()
    assert f"{bad}: not shipped:" in err and "run.json is missing" in err
    assert f"{good}:" in out and not (good / "state").exists()


def test_ship_keep_epochs_deletes_the_other_snapshots_but_never_the_best(tmp_path, capsys):
    """The shipped demo PSPNet has snapshots 1, 19 (best) and 20 (last): ``--keep-epochs last`` keeps 19 and 20.
    Shipping it again rewrites no file, and an epoch with no snapshot is refused before anything is deleted."""
    from core.runs.ship import main as ship_main
    from tests.conftest import ROOT

    run = tmp_path / "pspnet"
    shutil.copytree(ROOT / "checkpoints" / "pspnet-r18x0.1", run)
    assert load_run(run).epochs == [1, 19, 20] and load_run(run).best_epoch == 19
    before = {p.name: p.read_bytes() for p in (run / "weights").iterdir()}
    assert ship_main([str(run), "--keep-epochs", "7"]) == 1
    assert "no weights for epoch 7; saved epochs: [1, 19, 20]" in capsys.readouterr().err
    assert load_run(run).epochs == [1, 19, 20]
    assert ship_main([str(run), "--keep-epochs", "last"]) == 0
    assert load_run(run).epochs == [19, 20] and load_run(run).best_epoch == 19
    kept = {p.name: p.read_bytes() for p in (run / "weights").iterdir()}
    assert kept == {k: before[k] for k in ("epoch_0019.safetensors", "epoch_0020.safetensors")}  # not rewritten
    with pytest.raises(SystemExit):
        ship_main([str(run), "--keep-epochs", "first"])
    assert "'first' is not an epoch" in capsys.readouterr().err


def test_label_maps_round_trip_through_png_at_every_class_count():
    """Label maps are stored as 8-bit palette PNGs (unfiltered; a grey palette) up to 256 classes, 16-bit beyond;
    both decode to the exact classes."""
    import io

    from PIL import Image

    from core.runs.results import decode_png, encode_png

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (37, 53))
    small[0, 0], small[-1, -1] = 0, 255
    big = rng.integers(0, 300, (37, 53))
    for labels, mode in ((small, "P"), (big, "I;16")):
        data = encode_png(labels)
        with Image.open(io.BytesIO(data)) as image:
            assert image.mode == mode
        decoded = decode_png(data)
        assert decoded.dtype == np.int64 and np.array_equal(decoded, labels)
    with Image.open(io.BytesIO(encode_png(small))) as image:
        assert np.array_equal(np.asarray(image.convert("L")), small)  # a viewer shows class c as grey level c


def test_ship_keep_epochs_drops_the_last_weights_unless_kept(tmp_path):
    """A run whose final epoch is only in last.safetensors (no snapshot of it): kept by ``last``, dropped otherwise."""
    from core.runs.ship import keep_only
    from tests.conftest import ROOT

    for keep, expected_last in ((["last"], True), ([1], False)):
        run = tmp_path / f"pspnet-{keep[0]}"
        shutil.copytree(ROOT / "checkpoints" / "pspnet-r18x0.1", run)
        (run / "weights" / "epoch_0020.safetensors").rename(run / "weights" / "last.safetensors")
        assert load_run(run).epochs == [1, 19] and load_run(run).last_epoch == 20
        dropped = keep_only(run, keep)
        assert (run / "weights" / "last.safetensors").exists() == expected_last
        assert load_run(run).epochs == ([19] if keep == ["last"] else [1, 19])  # the best, 19, always stays
        assert dropped == ([1] if keep == ["last"] else [20])
    config = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**config, "status": {"state": "running"}}))
    with pytest.raises(RunError, match="still training"):  # a run in training (or interrupted) is left alone
        keep_only(run, [1])
    assert load_run(run).epochs == [1, 19]
