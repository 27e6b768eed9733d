"""Tab "Runs": every run under the runs folder, with or without weights, as a table of the configuration keys
that differ between runs, their scores and their live state (running with epoch k of N and the time left;
interrupted; finished). It sorts, filters by text or by a numeric range, groups runs that differ only in chosen
keys (the seed) into mean ± std rows, draws the runs in parallel coordinates, and opens selected runs in
Compare or Metrics. The table itself is ``core.explorer.sweeps``; refreshed on a timer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Sequence

import gradio as gr
import pandas as pd

from app.common import PRIVATE, READ, AppContext, bind
from core.explorer import sweeps
from core.explorer.figures import parallel_coordinates
from core.explorer.tables import display_rows
from core.explorer.validation import range_bound

HEADER = ["run", "state", "epoch", "of"]  # an empty table's header
REFRESH_S = 5.0  # the page asks for new runs and epochs this often (a stat per run file; nothing is read unless it changed)


def runs(
    ctx: AppContext,
    search: str = "",
    sort_by: str | None = None,
    descending: bool = True,
    range_column: str | None = None,
    range_min: str = "",
    range_max: str = "",
    group_by: list[str] | None = None,
):
    """Look for new runs, epochs and snapshots now; then every run as a row: the configuration keys that differ
    between runs, the best epoch's scores and the live state. Kept: the rows that contain every word of ``search``
    and whose ``range_column`` lies in [``range_min``, ``range_max``] (numbers as text, e.g. "1e-3"; empty: open).
    With ``group_by`` (e.g. ``["seed"]``) the runs equal in every other key form one row with the mean ± std of
    each score and the number of runs. Rows are sorted by ``sort_by``. Returns the table, a parallel-coordinates
    plot of the kept runs, all of it as JSON, and a status line."""
    ctx.refresh()
    table = sweeps.table(
        ctx.ws,
        search=search or "",
        sort_by=sort_by or None,
        descending=bool(descending),
        range_column=range_column or None,
        range_min=range_bound(range_min, "from"),
        range_max=range_bound(range_max, "to"),
        group_by=list(group_by or []),
    )
    unusable = [{"run": n, "reason": why} for n, why in ctx.ws.problems]
    data = {**table, "unavailable": unusable, "version": ctx.version}
    return frame(table["rows"], table["columns"]), parallel_coordinates(table["parcoords"]), data, status_line(table)


def resort(ctx: AppContext, *query: Any):
    """``runs`` in a new order: the table, JSON and status; the plot is left as drawn (sorting does not change
    it, and redrawing it was most of a re-sort's time in the browser)."""
    table, _, data, status = runs(ctx, *query)
    return table, gr.skip(), data, status


def frame(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """The rows as the table shows them (``core.explorer.tables.display_rows``)."""
    shown = display_rows(rows, columns)
    if shown:
        return pd.DataFrame(shown)
    return pd.DataFrame(columns=[c for c in columns if not (c.endswith(" std") and c[:-4] in columns)] or HEADER)


def status_line(table: dict[str, Any]) -> str:
    text = f"{table['total']} runs · {table['shown']} shown"
    if table["group_by"]:
        text += f" · grouped by {', '.join(table['group_by'])} into {len(table['rows'])} rows (mean ± std)"
    return text + " · click rows to select their runs"


def controls(ctx: AppContext, data: dict[str, Any]):
    """The menus follow the table: its columns to sort by, its numeric columns, the keys that differ, every run;
    and the folders that cannot be used, with the reason."""
    if not data:
        return (gr.skip(),) * 5
    note = unusable_note(data.get("unavailable", []))
    return (
        gr.update(choices=data["columns"]),
        gr.update(choices=data["numeric"]),
        gr.update(choices=data["config_keys"]),
        gr.update(choices=list(ctx.ws.listed)),
        note,
    )


def unusable_note(unusable: Sequence[dict[str, str]]) -> str:
    return "\n".join(f"- `{u['run']}`: {u['reason']}" for u in unusable) or "Every run folder is usable."


def pick_row(ctx: AppContext, data: dict[str, Any], selected: list[str], evt: gr.SelectData):
    """A click on a row adds its runs (a group's members) to the selection."""
    label = (evt.row_value or [None])[0]
    return sweeps.add_row_runs(data or {}, label, selected or [])


def tick(ctx: AppContext, version: int):
    """Timer and "Refresh runs": the runs version, changed only when some run's files changed."""
    ctx.refresh()
    return ctx.version if ctx.version != version else gr.skip()


# --- sections of the page ------------------------------------------------------------------------------------
def _query(ctx: AppContext, c: SimpleNamespace) -> None:
    """Search, sort, range and grouping: the parameters of /runs."""
    first = sweeps.table(ctx.ws)
    c.first = {**first, "unavailable": [{"run": n, "reason": why} for n, why in ctx.ws.problems]}
    with gr.Row():
        c.search = gr.Textbox(
            "", label="Filter (Enter): words every row must contain, e.g. adamw large", scale=3, elem_id="runs-search"
        )
        c.sort_by = gr.Dropdown(
            first["columns"], value=first["score"], label="Sort by", allow_custom_value=True, filterable=True, scale=2
        )
        c.descending = gr.Checkbox(True, label="Descending", scale=1)
    with gr.Row():
        c.range_column = gr.Dropdown(
            first["numeric"], value=None, label="Range on column", allow_custom_value=True, filterable=True, scale=2
        )
        # text, not gr.Number: an empty number box would send 0, and an open end must stay open
        c.range_min = gr.Textbox("", label="from (Enter)", placeholder="open, or e.g. 1e-3", scale=1, elem_id="runs-range-min")
        c.range_max = gr.Textbox("", label="to (Enter)", placeholder="open, or e.g. 0.01", scale=1, elem_id="runs-range-max")
        c.group_by = gr.Dropdown(
            first["config_keys"],
            value=[],
            multiselect=True,
            allow_custom_value=True,
            filterable=True,
            label="Group: keys that vary inside a group (e.g. seed)",
            scale=3,
            elem_id="runs-group",
        )
        c.refresh_b = gr.Button("Refresh runs", size="sm", elem_id="refresh-runs", scale=1)


def _table(c: SimpleNamespace) -> None:
    c.status = gr.Markdown("", elem_id="runs-status")
    c.table = gr.Dataframe(
        frame([], c.first["columns"]),
        label="Runs",
        interactive=False,
        wrap=False,
        elem_id="runs-table",
        max_height=520,
        pinned_columns=1,
    )


def _plots(c: SimpleNamespace) -> None:
    """The parallel-coordinates plot, the folders that cannot be used, and the JSON."""
    c.parcoords = gr.Plot(label="Hyper-parameters against the score (drag along an axis to highlight)", elem_id="runs-parcoords")
    with gr.Accordion("Folders that cannot be used", open=False):
        c.unusable = gr.Markdown(unusable_note(c.first.get("unavailable", [])))
    with gr.Accordion("As JSON (what /runs returns)", open=False):
        c.data = gr.JSON(label="runs")


def _selection(ctx: AppContext, c: SimpleNamespace, targets: Sequence[SimpleNamespace]) -> None:
    """Runs picked from the table, and the buttons that open them in other tabs."""
    with gr.Row():
        c.selected = gr.Dropdown(
            list(ctx.ws.listed),
            value=[],
            multiselect=True,
            filterable=True,
            label="Selected runs (click rows of the table, or type to search)",
            scale=4,
            elem_id="runs-selected",
        )
        with gr.Column(scale=2, min_width=260):
            with gr.Row():
                c.select_shown_b = gr.Button("Select the shown runs", size="sm")
                c.clear_b = gr.Button("Clear", size="sm")
            with gr.Row():
                c.open_bs = [
                    (gr.Button(f"Open in {t.label}", size="sm", variant="primary", elem_id=f"runs-open-{t.tab}"), t)
                    for t in targets
                ]


# --- wiring --------------------------------------------------------------------------------------------------
def _wire_table(ctx: AppContext, c: SimpleNamespace, version: gr.Number) -> dict:
    """/runs, on every change of the query and when runs change on disk; returns the event that shows the table."""
    query = [c.search, c.sort_by, c.descending, c.range_column, c.range_min, c.range_max, c.group_by]
    show = dict(fn=bind(ctx, runs, 4, status=3), inputs=query, outputs=[c.table, c.parcoords, c.data, c.status])
    follow = dict(
        fn=bind(ctx, controls, 5), inputs=[c.data], outputs=[c.sort_by, c.range_column, c.group_by, c.selected, c.unusable]
    )
    gr.on(  # a new order: the same rows, so the plot stays
        [c.sort_by.input, c.descending.input],
        bind(ctx, resort, 4, status=3),
        query,
        show["outputs"],
        trigger_mode="always_last",
        **PRIVATE,
        **READ,
    )
    changed = [c.refresh_b.click, c.search.submit, c.range_column.input, c.range_min.submit, c.range_max.submit]
    gr.on([*changed, c.group_by.input], **show, api_name="runs", trigger_mode="always_last", **READ).then(
        **follow, **PRIVATE
    ).then(lambda: ctx.version, None, version, **PRIVATE)
    version.change(**show, **PRIVATE, **READ).then(**follow, **PRIVATE)
    return show


def _wire_selection(ctx: AppContext, c: SimpleNamespace, tabs: gr.Tabs | None) -> None:
    """Rows clicked into the selection; the selection opened in Compare or Metrics (and that tab shown)."""
    c.table.select(bind(ctx, pick_row, 1), [c.data, c.selected], c.selected, **PRIVATE)
    c.select_shown_b.click(lambda data: (data or {}).get("runs", []), [c.data], c.selected, **PRIVATE)
    c.clear_b.click(lambda: [], None, c.selected, **PRIVATE)
    for button, target in c.open_bs:
        opened = bind(ctx, _opener(target), len(target.outputs) + 1)
        step = button.click(opened, [c.selected], [*target.outputs, tabs], **PRIVATE, **READ)
        for event in target.then:
            step = step.then(**event, **PRIVATE)


def _opener(target: SimpleNamespace):
    """``target.fn`` on the selected runs, then its tab shown (nothing changes if the runs cannot be opened there)."""

    def open_in(ctx: AppContext, selected: list[str]):
        return (*target.fn(ctx, selected or []), gr.Tabs(selected=target.tab))

    return open_in


def build(
    ctx: AppContext, version: gr.Number, *, tabs: gr.Tabs | None = None, targets: Sequence[SimpleNamespace] = ()
) -> dict[str, Any]:
    """The tab; ``targets`` are the tabs selected runs can be opened in (``label``, ``tab`` id, ``fn(ctx, runs)``
    returning their ``outputs``, and the events to run ``then``), ``tabs`` the page's tabs to switch."""
    gr.Markdown(
        "Every run, also while it trains and before its first snapshot: the configuration keys that differ between "
        f"runs, the best epoch's scores and the live state, refreshed every {REFRESH_S:g} s without a restart."
    )
    c = SimpleNamespace()
    _query(ctx, c)
    _table(c)
    _selection(ctx, c, targets if tabs is not None else ())
    _plots(c)
    show = _wire_table(ctx, c, version)
    _wire_selection(ctx, c, tabs)
    return dict(load=[show])


def add_timer(ctx: AppContext, version: gr.Number) -> None:
    """A page timer that bumps ``version`` when runs changed on disk; tabs listen to ``version.change``."""
    gr.Timer(REFRESH_S).tick(bind(ctx, tick, 1), [version], version, **PRIVATE, **READ)
