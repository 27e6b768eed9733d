"""Tab "Runs": every run under the runs folder with its live state (running with epoch k of N, latest
score and time left; interrupted; finished), the folders that cannot be used and why; refreshed on a timer."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from app.common import PRIVATE, READ, AppContext, bind
from core.explorer.live import run_summary

HEADER = ["run", "task", "architecture", "dataset", "state", "epoch"]  # an empty table's header
REFRESH_S = 5.0  # the page asks for new runs and epochs this often (a stat per run file; nothing is read unless it changed)


def runs(ctx: AppContext):
    """Look for new runs, epochs and snapshots now; every run with its state, and the unusable folders."""
    ctx.refresh()
    ws = ctx.ws
    rows = [run_summary(n, r) for n, r in ws.runs.items()] + [run_summary(n, r, pending=True) for n, r in ws.pending.items()]
    unusable = [{"run": n, "reason": why} for n, why in ws.problems]
    note = "\n".join(f"- `{u['run']}`: {u['reason']}" for u in unusable) or "Every run folder is usable."
    return (
        pd.DataFrame(rows) if rows else pd.DataFrame(columns=HEADER),
        {"runs": rows, "unavailable": unusable, "version": ctx.version},
        note,
    )


def tick(ctx: AppContext, version: int):
    """Timer and "Refresh runs": the runs version, changed only when some run's files changed."""
    ctx.refresh()
    return ctx.version if ctx.version != version else gr.skip()


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    gr.Markdown(
        "Runs appear here, and in every tab's menus, while they train: new folders, epochs and snapshots are picked up "
        f"every {REFRESH_S:g} s without a restart."
    )
    table = gr.Dataframe(
        pd.DataFrame(columns=HEADER), label="Runs", interactive=False, wrap=False, elem_id="runs-table", max_height=500
    )
    with gr.Accordion("Folders that cannot be used", open=False):
        unusable = gr.Markdown("")
    with gr.Accordion("As JSON (what /runs returns)", open=False):
        data = gr.JSON(label="runs")
    show = dict(fn=bind(ctx, runs, 3), inputs=None, outputs=[table, data, unusable])
    refresh_b = gr.Button("Refresh runs", size="sm", elem_id="refresh-runs")
    refresh_b.click(**show, api_name="runs", **READ).then(lambda: ctx.version, None, version, **PRIVATE)
    version.change(**show, **PRIVATE, **READ)
    return dict(load=[show])


def add_timer(ctx: AppContext, version: gr.Number) -> None:
    """A page timer that bumps ``version`` when runs changed on disk; tabs listen to ``version.change``."""
    gr.Timer(REFRESH_S).tick(bind(ctx, tick, 1), [version], version, **PRIVATE, **READ)
