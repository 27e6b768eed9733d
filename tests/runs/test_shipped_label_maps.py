"""Refactors change no behaviour: every shipped run predicts the label maps recorded before the
house-by-concern move (``tests/runs/shipped_label_maps.py``), on the shipped CamVid sample and on synthstreets.

Slow on purpose (about 30 s on 2 cores, in two processes of one thread): it runs all 19 shipped runs, which is
what makes it a check.
"""

from __future__ import annotations

import json

import numpy as np

from tests.runs.shipped_label_maps import RECORD, label_maps, machine


def test_every_shipped_run_predicts_the_recorded_label_maps():
    record = json.loads(RECORD.read_text())
    now = label_maps(workers=2)
    assert set(now) == set(record["runs"])
    for name, rec in record["runs"].items():
        got = now[name]
        recorded_on = rec.get("machine", record["machine"])  # a run added later says where it was recorded
        same_machine = machine() == recorded_on
        assert (got["epoch"], got["split"], got["images"]) == (rec["epoch"], rec["split"], rec["images"]), name
        if same_machine or got["sha256"] == rec["sha256"]:
            assert got["sha256"] == rec["sha256"], f"{name}: the label maps changed"
            continue
        # another CPU: float kernels may break a few argmax ties differently; the class counts must still agree
        a, b = np.asarray(got["counts"]), np.asarray(rec["counts"])
        moved = np.abs(a - b).sum() / 2 / b.sum()
        assert moved < 1e-3, f"{name}: {moved:.4%} of the pixels changed class on {machine()} (recorded on {recorded_on})"
