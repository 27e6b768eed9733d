"""Pieces of the evaluation pass (core.inference.passes) on hand-made cases."""

import threading
import time

import numpy as np
import pytest
import torch

from core.evaluation.measures import measures_for
from core.inference.passes import SampleSpec, _pixels_by_class, evaluate_chunk
from core.inference.predictor import SegmentationPrediction
from core.tasks import SegmentationTask


def test_pixels_by_class_gives_each_class_its_pixels_in_raster_order():
    mask = np.array([[2, 0, 2], [255, 0, 2]], dtype=np.uint8)
    got = [(c, where.tolist()) for c, where in _pixels_by_class(mask)]
    assert got == [(0, [1, 4]), (2, [0, 2, 5]), (255, [3])]  # flat indices: row * 3 + column
    wide = np.array([[70000, -1], [-1, 70000]])  # beyond 16 bits, and negative: sorted as they are
    assert [(c, where.tolist()) for c, where in _pixels_by_class(wide)] == [(-1, [1, 2]), (70000, [0, 3])]
    noise = np.random.default_rng(0).integers(0, 5, (20, 30))
    assert [c for c, _ in _pixels_by_class(noise)] == [0, 1, 2, 3, 4]
    for c, where in _pixels_by_class(noise):
        np.testing.assert_array_equal(where, np.flatnonzero(noise == c))


class _Noisy:
    """A segmentation 'model' on the CPU: each image's labels are its label map with every seventh pixel moved
    on by one class, its confidence a seeded draw; features of 4 channels at half size."""

    task, classes, ignore_index, device = SegmentationTask, ["a", "b", "c"], 255, torch.device("cpu")

    def predict(self, images, **asks):
        out = []
        for im in images:
            target = im[..., 0].astype(np.int64)
            labels = np.where(np.arange(target.size).reshape(target.shape) % 7 == 0, (target + 1) % 3, target % 3)
            rng = np.random.default_rng(int(im.sum()))
            features = rng.normal(size=(4, target.shape[0] // 2, target.shape[1] // 2)).astype(np.float32)
            conf = rng.uniform(0.3, 1, target.shape).astype(np.float32)
            out.append(SegmentationPrediction(labels, None, features if asks.get("features") else None, confidence=conf))
        return out


class _Maps:
    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(1)
        self.targets = [rng.choice([0, 1, 2, 255], size=(12, 10)) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.targets)

    def load(self, i: int):
        return np.repeat(self.targets[i][..., None], 3, 2).astype(np.uint8), self.targets[i]


class _SlowFirst(_Noisy):
    """``_Noisy``, slow on the batch holding image 0 (so later batches finish first), recording on which thread and
    with how many torch threads each batch ran."""

    def __init__(self, data: _Maps) -> None:
        self.first, self.seen = data.load(0)[0], []

    def predict(self, images, **asks):
        if np.array_equal(images[0], self.first):
            time.sleep(0.2)
        self.seen.append((threading.get_ident(), torch.get_num_threads()))
        return super().predict(images, **asks)


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_streams_give_what_one_stream_gives(torch_threads):
    """On the CPU batches run in streams (one per torch thread, each on one) and are joined in batch order: the
    measure states, label maps and embedding points are those of one stream, for batches that do not divide
    evenly and finish out of order; torch's thread count is the caller's again afterwards."""
    measures = measures_for(SegmentationTask)
    data = _Maps(11)
    chunks, models = [], []
    for threads in (1, 3):
        torch_threads(threads)
        models.append(_SlowFirst(data))
        chunks.append(evaluate_chunk(models[-1], data, 0, 11, measures, sample=SampleSpec(per_class=5), batch_size=4))
        assert torch.get_num_threads() == threads
    assert {n for _, n in models[1].seen} == {1} and len({t for t, _ in models[1].seen}) > 1  # streams of one thread
    one, three = chunks
    assert one.labels == three.labels and len(one.labels) == 11
    for m in measures:
        for name, value in one.states.parts[m.name].items():
            np.testing.assert_array_equal(value, three.states.parts[m.name][name], err_msg=f"{m.name}.{name}")
    assert one.sample.keys() == three.sample.keys() and len(one.sample["labels"]) > 0
    for key, value in one.sample.items():
        np.testing.assert_array_equal(value, three.sample[key])
    cm = one.states.parts["confusion"]["matrix"]  # against the labels counted by hand
    expect = sum(
        np.bincount(t[t < 3] * 3 + _Noisy().predict([data.load(i)[0]])[0].labels[t < 3], minlength=9).reshape(3, 3)
        for i, t in enumerate(data.targets)
    )
    np.testing.assert_array_equal(cm, expect)


class _Unreadable(_Maps):
    def load(self, i: int):
        if i == 6:
            raise ValueError("image 6 is not a readable image")
        return super().load(i)


def test_a_batch_that_fails_stops_the_streams_with_its_error(torch_threads):
    torch_threads(2)
    with pytest.raises(ValueError, match="image 6"):
        evaluate_chunk(_Noisy(), _Unreadable(11), 0, 11, measures_for(SegmentationTask), batch_size=2)
    assert torch.get_num_threads() == 2


class _OnAccelerator(_Noisy):
    device = torch.device("meta")  # not the CPU: the pass takes its accelerator schedule (the forward on its thread)

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def predict(self, images, **asks):
        self.threads.add(threading.get_ident())
        return super().predict(images, **asks)


def test_the_accelerator_schedule_gives_what_the_cpu_streams_give(torch_threads):
    torch_threads(2)
    measures, data, spec = measures_for(SegmentationTask), _Maps(11), SampleSpec(per_class=5)
    model, said = _OnAccelerator(), {"beside": [], "streams": []}
    beside = evaluate_chunk(
        model, data, 0, 11, measures, sample=spec, batch_size=4, progress=lambda f, m: said["beside"].append(m)
    )
    streams = evaluate_chunk(
        _Noisy(), data, 0, 11, measures, sample=spec, batch_size=4, progress=lambda f, m: said["streams"].append(m)
    )
    assert model.threads == {threading.get_ident()}  # the forward ran here, batch after batch
    assert beside.labels == streams.labels
    for m in measures:
        for name, value in streams.states.parts[m.name].items():
            np.testing.assert_array_equal(value, beside.states.parts[m.name][name], err_msg=f"{m.name}.{name}")
    for key, value in streams.sample.items():
        np.testing.assert_array_equal(value, beside.sample[key])
    assert said["beside"] == said["streams"] == ["images 4/11", "images 8/11", "images 11/11"]  # in batch order
