"""Concurrent users (a small version of bench/load.py): 5 clients x 3 mixed requests, no failure, and a
history read is not queued behind model runs."""

from __future__ import annotations

import sys

import pytest

from core.explorer import Workspace, clear_caches
from tests.app_server import running_app
from tests.conftest import ROOT

pytest.importorskip("gradio_client")
sys.path.insert(0, str(ROOT))
from bench.load import load_test, plan  # noqa: E402


def test_five_clients_three_mixed_requests_each(explorer_runs, tmp_path):
    clear_caches()
    p = plan(Workspace.discover(explorer_runs))
    with running_app(explorer_runs, tmp_path / "cache") as (_, url):
        times, failures = load_test(url, p, clients=5, requests=3)
    assert not failures
    assert sum(len(v) for v in times.values()) == 15 and all(
        times[k] for k in ("compare", "metrics", "confusion", "embedding", "upload")
    )


def test_events_are_in_their_concurrency_lanes(explorer_runs, tmp_path):
    from app.main import build_app

    demo = build_app(explorer_runs, cache_dir=tmp_path / "cache")
    lanes = {fn.api_name: (fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values() if fn.api_name}
    assert lanes["metrics"] == ("read", 16) and lanes["confusion"] == ("read", 16) and lanes["runs"] == ("read", 16)
    assert (
        lanes["compare"] == ("infer", 2)
        and lanes["upload"] == ("infer", 2)
        and lanes["embedding"] == ("read", 16)
        and lanes["hardest"] == ("long", 1)
    )
