"""A report's tables as LaTeX (booktabs), Markdown and CSV: the best value of each score column in bold, and a
dagger on a run whose gap to that column's best run is not significant under the paired bootstrap over images."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from core.evaluation.significance import significant

DAGGER = "†"
Interval = Sequence[float]  # (low, high) of the bootstrap interval of best minus the run


@dataclass
class Table:
    """Rows of runs, columns of numbers. ``scored[c]`` marks a score column (its highest value is the best, in
    bold); ``tied`` holds the (row, column) cells whose gap to the column's best is not significant (the dagger)."""

    title: str
    corner: str  # the header of the row labels' column
    columns: list[str]
    rows: list[str]
    values: list[list[float | None]]  # (rows, columns)
    decimals: list[int]
    scored: list[bool]
    tied: set[tuple[int, int]] = field(default_factory=set)
    note: str = ""

    def best(self, c: int) -> set[int]:
        """The rows holding column ``c``'s highest value (none for a column that is not a score)."""
        shown = [_number(row[c]) for row in self.values]
        top = max((v for v in shown if v is not None), default=None)
        return set() if not self.scored[c] or top is None else {r for r, v in enumerate(shown) if v == top}

    def cell(self, r: int, c: int) -> str:
        v = _number(self.values[r][c])
        return "–" if v is None else f"{v:.{self.decimals[c]}f}"


def _number(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def mark_ties(table: Table, gap: Callable[[int, int, int], Interval | None]) -> Table:
    """Fill ``table.tied``: ``gap(best_row, row, column)`` is the bootstrap interval of the best run minus the run in
    that column (None where no test applies); a run whose interval contains 0 gets the dagger."""
    table.tied = set()
    for c in range(len(table.columns)):
        best = table.best(c)
        if len(best) != 1:
            continue
        b = next(iter(best))
        for r in range(len(table.rows)):
            interval = None if r == b else gap(b, r, c)
            if interval is not None and not any(math.isnan(x) for x in interval) and not significant(interval):
                table.tied.add((r, c))
    return table


# --- LaTeX ---------------------------------------------------------------------------------------------------
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}"}
LATEX_SPECIAL |= {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _latex_cell(t: Table, r: int, c: int) -> str:
    text = t.cell(r, c)
    if r in t.best(c):
        text = rf"\textbf{{{text}}}"
    return text + (r"\textsuperscript{\dag}" if (r, c) in t.tied else "")


def to_latex(t: Table) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``) with a caption line as a comment."""
    lines = [f"% {latex_escape(t.title)}", r"\begin{tabular}{l" + "r" * len(t.columns) + "}", r"\toprule"]
    lines.append(" & ".join(latex_escape(h) for h in [t.corner, *t.columns]) + r" \\")
    lines.append(r"\midrule")
    for r, name in enumerate(t.rows):
        lines.append(" & ".join([latex_escape(name), *(_latex_cell(t, r, c) for c in range(len(t.columns)))]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if t.note:
        lines.append(f"% {latex_escape(t.note)}")
    return "\n".join(lines) + "\n"


# --- Markdown and CSV ----------------------------------------------------------------------------------------
def _markdown_cell(t: Table, r: int, c: int) -> str:
    text = t.cell(r, c)
    return (f"**{text}**" if r in t.best(c) else text) + (DAGGER if (r, c) in t.tied else "")


def to_markdown(t: Table) -> str:
    """A GitHub-flavoured Markdown table: bold best values, daggers, numbers right-aligned, the note below."""
    escape = lambda s: str(s).replace("|", r"\|")  # noqa: E731
    lines = ["| " + " | ".join(escape(h) for h in [t.corner, *t.columns]) + " |", "|:--" + "|--:" * len(t.columns) + "|"]
    for r, name in enumerate(t.rows):
        lines.append("| " + " | ".join([escape(name), *(_markdown_cell(t, r, c) for c in range(len(t.columns)))]) + " |")
    return "\n".join(lines) + (f"\n\n{t.note}\n" if t.note else "\n")


def to_csv(t: Table) -> str:
    """Every digit of the values; the best and the dagger as two columns per score column ("best", "not significant")."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([t.corner, *t.columns])
    for r, name in enumerate(t.rows):
        w.writerow([name, *("" if _number(v) is None else repr(float(v)) for v in t.values[r])])
    if any(t.scored):  # a second block: which cells are the best, which are not significantly worse
        w.writerow([])
        w.writerow(["mark", *t.columns])
        for r, name in enumerate(t.rows):
            w.writerow([name, *(_csv_mark(t, r, c) for c in range(len(t.columns)))])
    return out.getvalue()


def _csv_mark(t: Table, r: int, c: int) -> str:
    return "best" if r in t.best(c) else ("not significant" if (r, c) in t.tied else "")


FORMATS: dict[str, tuple[str, Callable[[Table], str]]] = {"latex": ("tex", to_latex), "markdown": ("md", to_markdown)}
FORMATS["csv"] = ("csv", to_csv)
