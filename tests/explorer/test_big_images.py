"""Big images and big splits in core.explorer: caches bounded by bytes, label maps (not K probability maps) kept
for the views, ensembles still averaging probabilities, the settable upload limit with both sizes said, and pages
of a split."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core import explorer as A
from core.explorer import cache
from core.explorer.renders import Renders
from core.explorer.uploads import analyze
from core.inference import Predictor, SegmentationPrediction
from core.inference.ensemble import Ensemble


@pytest.fixture(scope="module")
def ws(explorer_runs):
    A.clear_caches()
    return A.Workspace.discover(explorer_runs)


def test_weighed_caches_evict_by_bytes_not_by_count():
    c = A.LRU(max_items=100, max_weight=3000, weigh=cache.nbytes)
    c.put("a", np.zeros(1000, np.uint8)), c.put("b", np.zeros(1000, np.uint8))
    c.get("a")  # b is now the least recently used
    c.put("c", np.zeros(1500, np.uint8))  # 3500 bytes > 3000: b goes, a and c stay (2500 bytes)
    assert "b" not in c and "a" in c and "c" in c and len(c) == 2
    c.put("d", np.zeros(2000, np.float32))  # 8000 bytes alone: everything else goes, the newest stays
    assert list(c._data) == ["d"]
    pred = SegmentationPrediction(np.zeros((4, 5), np.uint8), None, uncertainty=np.zeros((4, 5), np.float32))
    assert cache.nbytes(pred) == 20 + 80  # the arrays among its attributes
    assert cache.nbytes([np.zeros(3, np.int64), np.zeros(2, np.uint8)]) == 26


def test_every_explorer_cache_is_bounded_by_bytes(monkeypatch):
    for c in (A.MODELS, A.PREDICTIONS, A.DATASETS, A.UPLOADS, A.EMBEDDINGS, A.RESULTS):
        assert c.max_weight is not None and c.max_weight > 0 and c.weigh is not None
    model = torch.nn.Linear(10, 3)  # 30 + 3 float32 parameters
    one = type("P", (), {"model": model})()
    assert cache.model_bytes(one) == 33 * 4
    assert cache.model_bytes(type("E", (), {"predictors": [one, one]})()) == 2 * 33 * 4
    monkeypatch.setenv("VISION_EXPLORER_UPLOADS_MB", "2")
    assert cache.budget_mb("VISION_EXPLORER_UPLOADS_MB", 256) == 2 * 2**20
    for bad in ("0", "-1", "lots"):
        monkeypatch.setenv("VISION_EXPLORER_UPLOADS_MB", bad)
        with pytest.raises(ValueError, match="VISION_EXPLORER_UPLOADS_MB"):
            cache.budget_mb("VISION_EXPLORER_UPLOADS_MB", 256)


def test_uploads_keep_uint8_labels_and_entropy_not_probabilities(ws):
    run = ws.run("seg-a")
    e = A.nearest_epoch(run, "best")
    image = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    A.UPLOADS.clear()
    kept = A.predict_image([(run, e)], image)
    full = Predictor(run, e).predict([image])[0]
    assert kept.probs is None and kept.labels.dtype == np.uint8
    np.testing.assert_array_equal(kept.labels, full.labels)
    np.testing.assert_allclose(kept.entropy(), full.entropy(), rtol=1e-6)
    assert cache.nbytes(kept) == 30 * 40 * (1 + 4)  # not 11 float32 maps


def test_dataset_predictions_and_ensembles_keep_labels_and_still_average_probabilities(ws):
    a, b = ws.run("seg-a"), ws.run("seg-b")
    members = [(a, A.nearest_epoch(a, "best")), (b, 3)]
    ref = ws.dataset("seg-a")
    image, _ = ref.load(2)
    pa, pb = (Predictor(r, ep).predict([image])[0].probs for r, ep in members)
    mean = ((0.5 * pa.astype(np.float64)) + 0.5 * pb.astype(np.float64)).astype(np.float32)  # (K, H, W)
    ens = Ensemble(members)
    np.testing.assert_array_equal(ens.predict([image])[0].probs, mean)
    labels_only = ens.predict([image], probs=False)[0]
    assert labels_only.probs is None
    np.testing.assert_array_equal(labels_only.labels, mean.argmax(0))
    A.PREDICTIONS.clear()
    kept = A.predict_items(members, ref, [2])[0]  # the app's road: an ensemble's label map, compacted
    assert kept.dtype == np.uint8
    np.testing.assert_array_equal(kept, mean.argmax(0))


def test_a_pass_without_probability_maps_keeps_each_pixels_top_probability(ws):
    run = ws.run("seg-a")
    e = A.nearest_epoch(run, "best")
    image = np.random.default_rng(2).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    full = Predictor(run, e).predict([image])[0]
    kept = Predictor(run, e).predict([image], probs=False, confidence=True)[0]
    assert kept.probs is None and kept.confidence.shape == (30, 40)
    np.testing.assert_array_equal(kept.labels, full.labels)
    np.testing.assert_allclose(kept.confidence, full.probs.max(0), rtol=1e-5)  # 1 / sum exp(l - max) = softmax's top
    members = [(run, e), (ws.run("seg-b"), 3)]
    mean = Ensemble(members).predict([image])[0].probs
    np.testing.assert_array_equal(Ensemble(members).predict([image], probs=False, confidence=True)[0].confidence, mean.max(0))


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_upload_limit_is_applied_said_with_both_sizes_and_nonsense_refused(ws, tmp_path):
    up = A.read_upload(_png(300, 200), max_side=100)
    assert up.image.shape == (67, 100, 3) and up.original == (300, 200)
    assert up.size_text == "300×200 px, analysed at 100×67 px"
    assert A.read_upload(_png(300, 200), max_side=300).size_text == "300×200 px"
    run = ws.run("seg-a")
    result = analyze(Renders(tmp_path), up, [("seg-a", (run, A.nearest_epoch(run, "best")))])
    assert result.status.startswith("300×200 px, analysed at 100×67 px")
    assert (result.scores["width"], result.scores["height"]) == (100, 67)
    assert (result.scores["original_width"], result.scores["original_height"]) == (300, 200)
    assert "analysed at 100×67 px" in result.panels[0].caption
    for bad in (0, -3, "abc", 2.5):
        with pytest.raises(ValueError, match="upload limit"):
            A.check_upload_side(bad)
    with pytest.raises(ValueError, match="upload limit"):
        A.read_upload(_png(30, 20), max_side=0)


@pytest.mark.parametrize(
    "total, page, size, expected",
    [
        (50, 1, 24, (1, 3, 0, 24)),
        (50, 3, 24, (3, 3, 48, 50)),
        (50, 9, 24, (3, 3, 48, 50)),  # past the last page: the last
        (0, 1, 24, (1, 1, 0, 0)),
        (7, "2", 5.0, (2, 2, 5, 7)),  # what a browser's number box sends
    ],
)
def test_pages_of_a_split(total, page, size, expected):
    p = A.page_of(total, page, size)
    assert (p.number, p.pages, p.start, p.stop) == expected


@pytest.mark.parametrize(
    "page, size, message", [(0, 24, "start at 1"), (1, 0, "1 to 200"), (1.5, 24, "whole"), (1, 999, "1 to 200")]
)
def test_bad_pages_are_refused_with_what_to_enter(page, size, message):
    with pytest.raises(ValueError, match=message):
        A.page_of(50, page, size)
