"""The README's API example, run as written against the app on the shipped runs in checkpoints/."""

from __future__ import annotations

import re

import pytest

from core import explorer as A
from tests.app_server import running_app
from tests.conftest import ROOT

pytest.importorskip("gradio_client")


def api_example() -> str:
    section = (ROOT / "README.md").read_text().split("## API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_api_example_runs_against_the_shipped_runs(tmp_path, monkeypatch):
    code = api_example()
    assert code.count("api_name=") >= 12
    A.clear_caches()
    monkeypatch.chdir(ROOT)  # the example names files relative to the repository
    # as on a fresh clone: no dataset here (the example uses the shipped CamVid val sample)
    with running_app(ROOT / "checkpoints", tmp_path / "cache", str(tmp_path / "no-data")) as (_, url):
        scope: dict = {}
        exec(compile(code.replace("http://127.0.0.1:7860/", url), "README.md (API)", "exec"), scope)  # noqa: S102
    assert 0 <= scope["scores"]["runs"][0]["miou"] <= 1 and len(scope["scores"]["runs"]) == 4  # three runs and the ensemble
    assert {r["run"] for r in scope["metrics"]["summary"]} == set(scope["runs"]) and scope["matrix"]["classes"][3] == "Road"
    assert len(scope["results"]["runs"]) == 3 and "miou" not in scope["errors"]
