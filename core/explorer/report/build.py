"""What a report holds, gathered from what the explorer already computes: the runs' recorded histories (the
summary and per-class tables, as /metrics shows them; the curves), the evaluation results on the chosen split
(confusion matrices, calibration, per-image scores for the hardest images and the paired bootstrap), computed
first through ``core.evaluate`` when they are missing, and the predictions on a few images."""

from __future__ import annotations

import io
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

import core
from core import visualize as V
from core.evaluation.per_image import image_scores
from core.evaluation.significance import paired_bootstrap_iu
from core.explorer import assess, tables
from core.explorer.figures import (
    class_difference_bars,
    class_score_bars,
    confusion_heatmap,
    reliability_diagram,
    training_curves,
)
from core.explorer.predictions import Member, Progress, predict_items
from core.explorer.report.tables import Table, mark_ties
from core.explorer.results import ensure, measure_result, per_image
from core.explorer.splits import hardest_for
from core.explorer.workspace import DatasetRef, Workspace
from core.runs.history import spread_epochs

HARDEST = 4  # images shown side by side when none are chosen
STRIP = 3  # epochs of an across-epochs strip: early, middle and final
STRIPS = ("best", "all")  # whose strips: the best run's (by mIoU), or every run's (a model pass per run and epoch)
PHOTO_SIDE = 480  # longest side of an embedded photo (label maps keep their pixels up to twice that)
RESAMPLES, SEED = 1000, 0  # the paired bootstrap of the Metrics tab's significance view


@dataclass
class Picture:
    caption: str
    data: bytes
    mime: str  # image/jpeg (photos) or image/png (label maps)


@dataclass
class Report:
    """Everything one report shows, as plain data and Plotly figures (``html.render`` lays it out)."""

    title: str
    made: dict[str, Any]  # how: command, runs and epochs, split, images, date, versions
    summary: Table
    per_class: Table
    curves: go.Figure
    class_bars: go.Figure
    confusions: list[tuple[str, go.Figure]]
    images: list[list[Picture]]  # one row per image: photo, ground truth, each run
    strips: list[tuple[str, list[Picture]]]  # per run: its predictions on the first image at early, middle, final epochs
    legend: Picture
    significance: list[tuple[str, go.Figure]]  # against the best run: the verdict in words, the per-class gaps
    calibration: go.Figure
    eces: list[tuple[str, float | None]]
    notes: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, go.Figure]:
        """Every figure by a file-name stem, for the static export."""
        out = {"curves": self.curves, "per_class_iou": self.class_bars, "calibration": self.calibration}
        out |= {f"confusion_{_stem(name)}": fig for name, fig in self.confusions}
        out |= {f"significance_{k + 1}": fig for k, (_, fig) in enumerate(self.significance)}
        return out


def _stem(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _encode(image: np.ndarray, photo: bool) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG" if photo else "PNG", **({"quality": 85} if photo else {}))
    return out.getvalue()


def _label_png(labels: np.ndarray, ref: DatasetRef) -> bytes:
    """A label map as a palette PNG in the dataset's colours (unlabelled pixels in ``V.IGNORE_COLOR``): one byte per
    pixel, small and quick to encode."""
    ds = ref.open()
    k = len(ds.palette)
    index = np.where(V.valid_mask(labels, k, ds.ignore_index), labels, k).astype(np.uint8)  # (H, W); k = unlabelled
    pil = Image.fromarray(index)  # "L", made "P" by its palette
    pil.putpalette([c for color in [*ds.palette, V.IGNORE_COLOR] for c in color])
    if max(index.shape) > 2 * PHOTO_SIDE:
        s = 2 * PHOTO_SIDE / max(index.shape)
        pil = pil.resize((round(index.shape[1] * s), round(index.shape[0] * s)), Image.Resampling.NEAREST)
    out = io.BytesIO()
    pil.save(out, format="PNG")
    return out.getvalue()


# --- checks and the evaluation -------------------------------------------------------------------------------
def _check(ws: Workspace, names: Sequence[str], epoch: Any, split: str) -> list[tuple[Member, DatasetRef]]:
    pairs = assess.selection(ws, names, epoch, split)  # discovered runs, the split, the run limit
    for name, (member, _) in zip(names, pairs):
        if not member[0].task.dense:
            raise ValueError(f"run {name} is a {member[0].task.name} run: a report is for segmentation runs")
    if len({ref for _, ref in pairs}) > 1 or len({tuple(m[0].classes) for m, _ in pairs}) > 1:
        raise ValueError("the runs of a report must share a dataset and its classes: choose runs of one dataset")
    return pairs


def _images(ws: Workspace, ref: DatasetRef, names: Sequence[str], members: list[Member], chosen, progress) -> list[int]:
    n = ref.size()
    if chosen:
        bad = [i for i in chosen if not 0 <= int(i) < n]
        if bad:
            raise ValueError(f"image {bad[0]} is not in split {ref.split}: it has {n} images, numbered 0 to {n - 1}")
        return [int(i) for i in chosen]
    ranked, _ = hardest_for(ws, ref, names, [e for _, e in members], progress=progress)
    return [i for i, _ in ranked[:HARDEST]]


# --- tables --------------------------------------------------------------------------------------------------
def _per_class(ws: Workspace, names: Sequence[str], epoch: Any) -> tuple[Table, dict[str, Any]]:
    """The per-class table of /metrics (``tables.class_table``) with each run's recorded mIoU at the same epoch."""
    data = tables.class_table(ws, names, epoch)
    if data["waiting"]:
        raise ValueError(f"no evaluated epoch yet in {', '.join(data['waiting'])}: leave them out of the report")
    miou = [ws.recorded(r["run"]).record(r["epoch"]).get("miou") for r in data["runs"]]
    values = [[*r["scores"], m] for r, m in zip(data["runs"], miou)]
    k = len(data["classes"])
    table = Table(
        f"Per-class {data['metric']} at the {epoch} epoch",
        "run",
        [*data["classes"], "mIoU"],
        data["labels"],
        values,
        [3] * (k + 1),
        [True] * (k + 1),
    )
    return table, data


def _summary(ws: Workspace, data: dict[str, Any]) -> Table:
    """Parameters, epochs trained, training time, and the recorded scores at the report's epoch."""
    columns = ["parameters (M)", "epochs", "train time (min)", "mIoU", "pixel acc", "fwIoU"]
    values = []
    for r in data["runs"]:
        run = ws.recorded(r["run"])
        rec = run.record(r["epoch"]) or {}
        params, seconds = run.config["model"].get("num_params"), run.status.get("train_time")
        if seconds is None:
            seconds = sum(float(h.get("epoch_time") or 0.0) for h in run.history) or None
        values.append(
            [
                None if params is None else params / 1e6,
                len(run.history),
                None if seconds is None else seconds / 60,
                rec.get("miou"),
                rec.get("pixel_acc"),
                rec.get("fwiou"),
            ]
        )
    return Table("Summary", "run", columns, data["labels"], values, [2, 0, 1, 3, 3, 3], [False] * 3 + [True] * 3)


class Bootstrap:
    """Paired bootstraps over the split's images between runs, each pair computed once (best minus run)."""

    def __init__(self, iu: list[np.ndarray]) -> None:
        self.iu, self.done = iu, {}  # (N, K, 2) per run; (a, b) -> paired_bootstrap_iu(a, b)

    def __call__(self, a: int, b: int) -> dict[str, Any]:
        if (a, b) not in self.done:
            self.done[(a, b)] = paired_bootstrap_iu(self.iu[a], self.iu[b], resamples=RESAMPLES, seed=SEED)
        return self.done[(a, b)]


def _daggers(per_class: Table, summary: Table, boot: Bootstrap) -> None:
    """A dagger where the gap to a column's best run is not significant: per-class IoU and mIoU."""
    k = len(per_class.columns) - 1

    def class_gap(best: int, r: int, c: int):
        result = boot(best, r)
        return result["interval"] if c == k else result["class_interval"][c]

    mark_ties(per_class, class_gap)
    mark_ties(summary, lambda best, r, c: boot(best, r)["interval"] if summary.columns[c] == "mIoU" else None)
    note = (
        f"Bold: the best value of the column. †: the gap to the column's best run is not significant (paired bootstrap "
        f"over the images of the split, {RESAMPLES} resamples, 95%)."
    )
    per_class.note = summary.note = note


# --- figures and pictures ------------------------------------------------------------------------------------
def _image_rows(ref: DatasetRef, labels: list[str], members: list[Member], indices: list[int]) -> list[list[Picture]]:
    ds = ref.open()
    rows = []
    for i in indices:
        _, image, target = ref.item(i)
        row = [
            Picture(f"image {i}: {ds.item_id(i)}", _encode(V.fit_within(image, PHOTO_SIDE), photo=True), "image/jpeg"),
            Picture("ground truth", _label_png(target, ref), "image/png"),
        ]
        for label, member in zip(labels, members):
            pred = predict_items([member], ref, [i])[0]  # stored by the evaluation: read, not recomputed
            score = per_image(member, ref).score[i]  # the image's mIoU in the evaluation
            row.append(Picture(f"{label} · mIoU {score:.3f}", _label_png(pred, ref), "image/png"))
        rows.append(row)
    return rows


def _strips(
    ref: DatasetRef, labels: list[str], members: list[Member], index: int, runs: list[int]
) -> list[tuple[str, list[Picture]]]:
    """Runs ``runs``' predictions on image ``index`` at early, middle and final saved epochs (a model pass each,
    except an epoch whose evaluation stored its label maps)."""
    ds = ref.open()
    _, _, target = ref.item(index)
    out = []
    for label, (run, _) in [(labels[r], members[r]) for r in runs]:
        pictures = []
        for e in spread_epochs(run.epochs or [run.last_epoch], STRIP):
            pred = predict_items([(run, e)], ref, [index])[0]
            s = image_scores(pred, target, len(ds.classes), ds.ignore_index)
            pictures.append(Picture(f"epoch {e} · mIoU {s['miou']:.3f}", _label_png(pred, ref), "image/png"))
        out.append((f"{label.split(' @')[0]} on image {index}", pictures))
    return out


def _confusions(labels: list[str], pairs: list[tuple[Member, DatasetRef]]) -> list[tuple[str, go.Figure]]:
    out = []
    for label, (member, ref) in zip(labels, pairs):
        cm = np.asarray(measure_result(member, ref, "confusion")["confusion"])
        title = f"{label} on {ref.split}: recall per true class (hover: pixels)"
        out.append((label, confusion_heatmap(cm, member[0].classes, title=title)))
    return out


def _significance(
    ws: Workspace, names: Sequence[str], members: list[Member], split: str, best: int
) -> list[tuple[str, go.Figure]]:
    """Each run against the best one (by mIoU): the paired bootstrap's verdict and its per-class gaps."""
    out = []
    for r, name in enumerate(names):
        if r == best:
            continue
        res = assess.significance(ws, names[best], members[best][1], name, members[r][1], split)
        out.append((res["verdict"], class_difference_bars(res)))
    return out


def _calibration(ws: Workspace, names: Sequence[str], epoch: Any, split: str) -> tuple[go.Figure, list]:
    table = assess.calibration_table(ws, names, epoch, split)
    return reliability_diagram(table["runs"]), [(f"{r['run']} @{r['epoch']}", r.get("ece")) for r in table["runs"]]


# --- the whole report ----------------------------------------------------------------------------------------
def _stage(progress: Progress | None, start: float, stop: float) -> Progress | None:
    return None if progress is None else (lambda f, m: progress(start + (stop - start) * f, m))


def build_report(
    ws: Workspace,
    names: Sequence[str],
    epoch: Any = "best",
    split: str | None = None,
    *,
    images: Sequence[int] | None = None,
    strips: str = "best",
    progress: Progress | None = None,
    limit: int | None = None,
    command: str = "",
) -> Report:
    """The report of runs ``names`` at ``epoch`` ("best", "last" or a number) on ``split`` (default: the first run's
    first split). Missing evaluation results are computed first (at most ``limit`` images on a click; see
    ``core.explorer.results.ensure``); ``images`` are shown side by side, by default the hardest four; ``strips``:
    the across-epoch strips of the best run or of "all" runs."""
    names = list(names or [])
    if not names:
        raise ValueError("select at least one run for the report")
    tables.epoch_choice(epoch)  # "best", "last" or a number, else a clear message
    if strips not in STRIPS:
        raise ValueError(f"strips are for {' or '.join(STRIPS)} runs, not {strips!r}")
    split = split or ws.splits(ws.dataset(names[0]))[0]
    pairs = _check(ws, names, epoch, split)
    members, ref = [m for m, _ in pairs], pairs[0][1]
    ensure(ws, pairs, progress=_stage(progress, 0.0, 0.7), limit=limit)
    per_class, data = _per_class(ws, names, epoch)
    summary = _summary(ws, data)
    labels = data["labels"]
    boot = Bootstrap([per_image(m, ref).iu for m in members])  # (N, K, 2) each
    _daggers(per_class, summary, boot)
    best = max(range(len(names)), key=lambda r: -np.inf if per_class.values[r][-1] is None else per_class.values[r][-1])
    shown = _images(ws, ref, names, members, images, _stage(progress, 0.7, 0.75))
    if progress is not None:
        progress(0.8, "predictions on the images")
    series = list(zip(labels, [r["scores"] for r in data["runs"]]))
    calibration, eces = _calibration(ws, names, epoch, split)
    classes = ref.open().classes
    return Report(
        title=f"{len(names)} runs on {ref.source}, split {split}",
        made=_made(command, names, members, data, epoch, split, ref, shown) | {"strips": strips},
        summary=summary,
        per_class=per_class,
        curves=training_curves(tables.curves(ws, names)),
        class_bars=class_score_bars(data["classes"], series, metric=data["metric"], title=per_class.title),
        confusions=_confusions(labels, pairs),
        images=_image_rows(ref, labels, members, shown),
        strips=_strips(ref, labels, members, shown[0], [best] if strips == "best" else list(range(len(names)))) if shown else [],
        legend=Picture("classes", _encode(V.class_legend(classes, ref.open().palette), photo=False), "image/png"),
        significance=_significance(ws, names, members, split, best),
        calibration=calibration,
        eces=eces,
    )


def _made(command: str, names, members: list[Member], data, epoch, split: str, ref: DatasetRef, shown) -> dict[str, Any]:
    return {
        "command": command,
        "runs": [
            {"run": n, "path": str(m[0].path), "weights epoch": m[1], "history epoch": r["epoch"]}
            for n, m, r in zip(names, members, data["runs"])
        ],
        "epoch": str(epoch),
        "split": split,
        "dataset": ref.source,
        "split images": ref.size(),
        "images shown": shown,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "vision explorer": core.__version__,
    }
