"""From comparison to report: one self-contained HTML file of runs on a split (tables, curves, confusion
matrices, images side by side, across-epoch strips, significance, calibration, how it was made), the tables
as LaTeX, Markdown and CSV, and the figures as SVG and PNG (``python -m core.report``, or the app's Metrics tab).

``build`` gathers the data, ``html`` renders the page, ``tables`` writes the tables, ``static`` the figures."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from core.explorer.predictions import Progress
from core.explorer.report.build import Report, build_report
from core.explorer.report.html import render
from core.explorer.report.static import write_figures
from core.explorer.report.tables import FORMATS, Table, to_csv, to_latex, to_markdown
from core.explorer.workspace import Workspace

__all__ = [
    "Report",
    "ReportFiles",
    "Table",
    "build_report",
    "parse_images",
    "render",
    "to_csv",
    "to_latex",
    "to_markdown",
    "write_report",
]


@dataclass
class ReportFiles:
    """What ``write_report`` wrote: the HTML, the tables by format, the figures, and why figures are missing."""

    html: Path
    tables: dict[str, Path]
    texts: dict[str, str]  # format -> both tables' text (to copy)
    figures: list[Path] = field(default_factory=list)
    figures_missing: str | None = None
    report: Report | None = None


def parse_images(text: str | None) -> list[int] | None:
    """ "0,5,12" -> [0, 5, 12]; empty -> None (the hardest images)."""
    if text is None or not str(text).strip():
        return None
    try:
        return [int(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"images are numbers separated by commas, such as 0,5,12; got {text!r}") from None


def command_for(ws: Workspace, names: Sequence[str], epoch: Any, split: str, images: Sequence[int] | None, strips: str) -> str:
    """The ``python -m core.report`` command that writes the same report (for a report made in the app)."""
    runs = " ".join(f"--run {shlex.quote(n)}" for n in names)
    shown = f" --images {','.join(str(i) for i in images)}" if images else ""
    root = f" --data-root {shlex.quote(ws.data_root)}" if ws.data_root else ""
    return (
        f"python -m core.report --runs {shlex.quote(str(ws.runs_dir))} {runs} --split {shlex.quote(str(split))} "
        f"--epochs {shlex.quote(str(epoch))}{shown} --strips {strips}{root} --out report.html"
    )


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(
    ws: Workspace,
    names: Sequence[str],
    out: str | Path,
    *,
    epoch: Any = "best",
    split: str | None = None,
    images: Sequence[int] | None = None,
    strips: str = "best",
    figures: bool = True,
    progress: Progress | None = None,
    limit: int | None = None,
    command: str = "",
) -> ReportFiles:
    """Write ``out`` (the HTML), ``<stem>_summary`` and ``<stem>_per_class`` as .tex, .md and .csv beside it, and
    (``figures``) the figures as SVG and PNG in ``<stem>_figures/``."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"the report is an HTML file: give --out a name ending in .html, not {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = build_report(ws, names, epoch, split, images=images, strips=strips, progress=progress, limit=limit, command=command)
    if progress is not None:
        progress(0.95, "writing the report")
    _atomic(out, render(report))
    paths, texts = {}, {}
    for fmt, (ext, write) in FORMATS.items():
        texts[fmt] = "\n".join(write(t) for t in (report.summary, report.per_class))
        for key, table in (("summary", report.summary), ("per_class", report.per_class)):
            paths[f"{key}.{ext}"] = out.with_name(f"{out.stem}_{key}.{ext}")
            _atomic(paths[f"{key}.{ext}"], write(table))
    files = ReportFiles(out, paths, texts, report=report)
    if figures:
        files.figures, files.figures_missing = write_figures(report.figures(), out.with_name(f"{out.stem}_figures"))
    return files
