"""Tab "Metrics": summary table, per-class scores, class x epoch heatmap and training curves, all from history."""

from __future__ import annotations

from typing import Any, Sequence

import gradio as gr
import pandas as pd

from app.common import HIDDEN, AppContext, guard
from app.figures import class_epoch_heatmap, class_score_bars, empty_figure, training_curves
from core import analysis as A

METRIC_LABEL = {"miou": "mIoU", "top1": "top-1"}


def summary_table(ctx: AppContext, names: Sequence[str]) -> pd.DataFrame:
    """One row per run; columns that no selected run has (e.g. top-5 for segmentation only) are dropped."""
    rows = A.summary_rows({n: ctx.ws.run(n) for n in names})
    df = pd.DataFrame(rows, columns=A.SUMMARY_COLUMNS)
    df = df.dropna(axis=1, how="all")
    for col in df.columns:
        if df[col].dtype.kind == "f" and col not in ("parameters",):
            df[col] = df[col].round(4 if col != "train time (s)" else 1)
    return df


def curves_input(ctx: AppContext, name: str) -> dict[str, Any]:
    run = ctx.ws.run(name)
    epochs, train_loss = A.history_series(run, "train_loss")
    _, val_loss = A.history_series(run, "val_loss")
    _, metric = A.history_series(run, run.monitor)
    status = run.status
    stopped = status.get("stopped_epoch") if status.get("state") == "early_stopped" else None
    return dict(name=name, epochs=epochs, train_loss=train_loss, val_loss=val_loss, metric=metric,
                metric_name=METRIC_LABEL.get(run.monitor, run.monitor), best_epoch=run.best_epoch, stopped_epoch=stopped)  # fmt: skip


def build(ctx: AppContext) -> dict[str, Any]:
    ws = ctx.ws
    names0 = ws.names
    default = ws.names_for("segmentation") or names0
    max_epoch = max((len(ws.run(n).history) for n in names0), default=1) or 1
    with gr.Row():
        runs = gr.Dropdown(names0, value=default[:6], multiselect=True, label="Runs", scale=4)
        which = gr.Radio(["best", "last", "chosen"], value="best", label="Per-class scores at epoch", scale=1)
        chosen = gr.Slider(1, max(2, max_epoch), value=1, step=1, label="Chosen epoch (nearest evaluated one per run)", scale=2)
    status = gr.Markdown("")
    table = gr.Dataframe(label="Summary (best epoch of each run)", elem_id="metrics-table", interactive=False, wrap=False, max_height=360)
    class_plot = gr.Plot(label="Per-class IoU", elem_id="metrics-classes")
    curves_plot = gr.Plot(label="Training curves", elem_id="metrics-curves")
    with gr.Row():
        heat_run = gr.Dropdown(names0, value=default[0] if default else None, label="Run for the class × epoch heatmap", scale=1)
    heat_plot = gr.Plot(label="Class × epoch", elem_id="metrics-heatmap")

    @guard(4, status=3)
    def metrics(run_names, epoch_choice, chosen_epoch=1):
        """Summary table, per-class scores at the chosen epoch and training curves of the selected runs."""
        names = [n for n in (run_names or [])]
        for n in names:
            ws.run(n)
        if not names:
            msg = "Select at least one run."
            return pd.DataFrame(columns=["run"]), empty_figure(msg), empty_figure(msg), msg
        df = summary_table(ctx, names)
        groups: dict[str, list[str]] = {}
        series = []
        classes: list[str] = []
        for n in names:
            run = ws.run(n)
            e = A.scored_epoch(run, epoch_choice if epoch_choice in ("best", "last") else (chosen_epoch or 1))
            lookup = dict(zip(run.classes, A.class_scores(run, e)))
            groups.setdefault(run.task, []).append(n)
            for c in run.classes:
                if c not in classes:
                    classes.append(c)
            series.append((f"{n} @{e}", lookup))
        aligned = [(label, [lookup.get(c) for c in classes]) for label, lookup in series]
        metric = "IoU" if list(groups) == ["segmentation"] else ("accuracy" if list(groups) == ["classification"] else "IoU / accuracy")
        bars = class_score_bars(classes, aligned, metric=metric, title=f"Per-class {metric} at the "
                                + (f"epoch nearest {chosen_epoch}" if epoch_choice == "chosen" else f"{epoch_choice} epoch"))
        curves = training_curves([curves_input(ctx, n) for n in names])
        return df, bars, curves, f"{len(names)} runs · scores from each run's recorded validation history (no recomputation)"

    @guard(1)
    def iou_heatmap(run_name):
        """Per-class IoU (or accuracy) of one run at every epoch."""
        if not run_name:
            return empty_figure("Select a run.")
        run = ws.run(run_name)
        epochs, values = A.class_scores_by_epoch(run)
        metric = "IoU" if run.task == "segmentation" else "accuracy"
        return class_epoch_heatmap(run.classes, epochs, values, metric=metric, title=f"{run_name}: {metric} per class and epoch")

    metric_outs = [table, class_plot, curves_plot, status]
    runs.change(metrics, [runs, which, chosen], metric_outs, api_name="metrics", trigger_mode="always_last")
    which.change(metrics, [runs, which, chosen], metric_outs, api_name="metrics_epoch", **HIDDEN)
    chosen.release(metrics, [runs, which, chosen], metric_outs, api_name="metrics_chosen_epoch", **HIDDEN)
    heat_run.change(iou_heatmap, [heat_run], heat_plot, api_name="iou_heatmap")
    return dict(load=[(metrics, [runs, which, chosen], metric_outs), (iou_heatmap, [heat_run], heat_plot)])
