"""Every Python block of the README runs. Two have tests of their own, which also check what they produce
(the training loop: tests/train/test_writer.py; the API example against the shipped runs:
tests/app/test_readme_api.py); every other block runs here, in a folder holding the runs it names."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

OWN_TESTS = {"Log your own training loop": "tests/train/test_writer.py", "API": "tests/app/test_readme_api.py"}


def python_blocks() -> list[tuple[str, str]]:
    """(heading, code) of each ```python block, with the heading it sits under (comments inside code are not headings)."""
    blocks, heading, code = [], "", None
    for line in (ROOT / "README.md").read_text().splitlines():
        if code is not None:
            if line.startswith("```"):
                blocks.append((heading, "\n".join(code)))
                code = None
            else:
                code.append(line)
        elif line.startswith("```python"):
            code = []
        elif re.match(r"#+ ", line):
            heading = line.lstrip("#").strip()
    return blocks


BLOCKS = [(h, c) for h, c in python_blocks() if h not in OWN_TESTS]


def test_every_python_block_is_run_by_a_test():
    headings = {h for h, _ in python_blocks()}
    assert set(OWN_TESTS) <= headings, "a block with a test of its own moved or was renamed"
    for path in OWN_TESTS.values():
        assert (ROOT / path).is_file()
    assert BLOCKS, "the README has Python blocks besides the two with tests of their own"


@pytest.mark.parametrize(("heading", "code"), BLOCKS, ids=[h for h, _ in BLOCKS])
def test_readme_block_runs(heading, code, tiny_seg_run, tmp_path, monkeypatch):
    """The block runs as written, in a folder whose runs/ holds every run it reads (the session's tiny run)."""
    monkeypatch.chdir(tmp_path)
    for name in set(re.findall(r'(?:load_run|Predictor)\("runs/([\w.-]+)"', code)):  # the runs a block reads
        shutil.copytree(tiny_seg_run[0], tmp_path / "runs" / name)
    rng = np.random.default_rng(0)
    scope = {"pil_image": Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))}
    exec(compile(code, f"README.md ({heading})", "exec"), scope)  # noqa: S102
