"""The report's tables: bold best and daggers on a hand-computed three-run case, in LaTeX, Markdown and CSV."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from core.evaluation.significance import paired_bootstrap_iu
from core.explorer.report.tables import Table, mark_ties, to_csv, to_latex, to_markdown

N = 10  # images


def per_image(intersections_0: list[float], intersections_1: list[float]) -> np.ndarray:
    """(N, 2, 2): two classes, each image's union 10 pixels of each class."""
    out = np.zeros((N, 2, 2))
    out[:, 0, 0], out[:, 1, 0], out[:, :, 1] = intersections_0, intersections_1, 10
    return out


# Class "road_&_rail" (0): A is best, 0.800; B 0.790 with gaps of +1 and -1 pixel from image to image (not
# significant); C 0.500, 3 pixels worse on every image (the interval is [0.3, 0.3]: significant).
# Class "sky" (1): C is best, 0.900 on every image; B 0.890 with gaps of -1 and +1 (not significant); A 0.500.
RUNS = {
    "A": per_image([8] * N, [5] * N),
    "B": per_image([9, 7, 9, 7, 9, 7, 9, 7, 9, 6], [10, 8, 10, 8, 10, 8, 10, 8, 10, 7]),
    "C": per_image([5] * N, [9] * N),
}


@pytest.fixture()
def table() -> Table:
    names = list(RUNS)
    values = [(RUNS[n][..., 0].sum(0) / RUNS[n][..., 1].sum(0)).tolist() for n in names]  # dataset IoU per class
    t = Table("Per-class IoU", "run", ["road_&_rail", "sky"], names, values, [3, 3], [True, True])

    def gap(best: int, r: int, c: int):
        return paired_bootstrap_iu(RUNS[names[best]], RUNS[names[r]], resamples=1000, seed=0)["class_interval"][c]

    return mark_ties(t, gap)


def test_best_and_daggers_are_the_hand_computed_ones(table):
    assert table.values[0] == pytest.approx([0.8, 0.5]) and table.values[1] == pytest.approx([0.79, 0.89])
    assert [table.best(c) for c in range(2)] == [{0}, {2}]
    assert table.tied == {(1, 0), (1, 1)}  # B on both columns; A's and C's gaps are significant


def test_latex_marks_bold_and_dagger(table):
    rows = {line.split(" & ")[0]: line for line in to_latex(table).splitlines() if line.endswith(r"\\")}
    assert rows["A"] == r"A & \textbf{0.800} & 0.500 \\"
    assert rows["B"] == r"B & 0.790\textsuperscript{\dag} & 0.890\textsuperscript{\dag} \\"
    assert rows["C"] == r"C & 0.500 & \textbf{0.900} \\"
    assert rows["run"] == r"run & road\_\&\_rail & sky \\"


def test_latex_compiles_or_is_well_formed(table, tmp_path):
    tex = to_latex(table)
    if shutil.which("pdflatex"):
        doc = "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n" + tex + "\\end{document}\n"
        (tmp_path / "t.tex").write_text(doc)
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=tmp_path, capture_output=True, timeout=60)
        assert done.returncode == 0 and (tmp_path / "t.pdf").exists(), done.stdout[-2000:]
        return
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    unescaped = body.replace(r"\{", "").replace(r"\}", "")
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert len(rows) == 1 + len(table.rows)
    assert all(len(re.findall(r"(?<!\\)&", row)) == len(table.columns) for row in rows)  # one & per value column


def test_markdown_and_csv_mark_the_same_cells(table):
    md = to_markdown(table).splitlines()
    assert md[2] == "| A | **0.800** | 0.500 |" and md[3] == "| B | 0.790† | 0.890† |" and md[4] == "| C | 0.500 | **0.900** |"
    blocks = to_csv(table).split("\n\n")
    assert blocks[0].splitlines()[1].startswith("A,0.8,0.5")
    assert blocks[1].splitlines()[1:] == ["A,best,", "B,not significant,not significant", "C,,best"]
