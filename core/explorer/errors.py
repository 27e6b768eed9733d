"""Where a run errs: its recorded confusion matrix, the confusion map and one cell's pixels on an image,
the images with most pixels in a cell, a clicked pixel, and the disagreement of two runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core import visualize as V
from core.evaluation.per_image import cell_mask, disagreement, error_pairs, worst_cell, wrong_pixels
from core.explorer.classes import MATRIX_CLASSES, choose_classes, most_confused_pairs
from core.explorer.compare import Panel, display
from core.explorer.predictions import Member, Progress, member_key, predict_items
from core.explorer.renders import Renders
from core.explorer.splits import split_stats, top_images_for_cell
from core.explorer.workspace import DatasetRef, Workspace, thumbnails
from core.runs import Run, RunError
from core.runs.history import confusion_at

MAX_CELL_IMAGES = 12
PAIRS = 25  # rows of the most confused pairs


def first_cell(run: Run, epoch: int) -> tuple[str, str]:
    """(true, predicted) class names of the largest mistake recorded at ``epoch``: the cell shown first."""
    try:
        a, b = worst_cell(confusion_at(run, epoch))
    except RunError:  # no matrix recorded: any pair will do
        a, b = 0, min(1, run.num_classes - 1)
    return run.classes[a], run.classes[b]


@dataclass
class ImageErrors:
    panels: list[Panel]  # image, confusion map, cell highlight (segmentation), disagreement map (with run B)
    scores: dict[str, Any]
    status: str


def image_errors(
    renders: Renders, ref: DatasetRef, index: Any, member: Member, a: int, b: int, other: Member | None = None
) -> ImageErrors:
    """Confusion map, the pixels of cell (a, b) and, with ``other``, the disagreement of the two runs on one image."""
    run, epoch = member
    i, image, target = ref.item(index)
    item = ref.open().item_id(i)
    pred = predict_items([member], ref, [i])[0]
    image_panel = Panel(renders.path(("image", ref, i), lambda: display(image)), f"image {i}: {item}")
    if not run.task.dense:
        top = int(pred.topk(1)[0][0])
        scores = {
            "image": i,
            "true_class": run.classes[target],
            "predicted": run.classes[top],
            "probability": float(pred.probs[top]),
        }
        return ImageErrors([image_panel], scores, f"{run.name} @ {epoch} · {ref.split} image {i} (`{item}`)")
    k, ignore = run.num_classes, run.ignore_index
    key = (member_key([member]), ref, i)
    cmap = renders.path(
        ("confusion-map",) + key, lambda: display(V.confusion_map(image, target, pred, run.palette, ignore_index=ignore))
    )
    mask = cell_mask(target, pred, a, b)
    cell = renders.path(("cell", a, b) + key, lambda: display(V.highlight(image, mask)))
    scores: dict[str, Any] = {
        "image": i,
        "wrong_pixels": wrong_pixels(pred, target, k, ignore),
        "cell": [run.classes[a], run.classes[b]],
        "cell_pixels": int(mask.sum()),
        "mistakes": [
            {"true": run.classes[t], "predicted": run.classes[p], "pixels": n} for t, p, n in error_pairs(pred, target, k, ignore)
        ],
    }
    panels = [
        image_panel,
        Panel(cmap, "confusion map: right dimmed, wrong in the predicted class's colour"),
        Panel(cell, f"{run.classes[a]} → {run.classes[b]}: {int(mask.sum()):,} pixels in magenta"),
    ]
    if other is not None:
        pred_b = predict_items([other], ref, [i])[0]
        cats, counts = disagreement(target, pred, pred_b, k, ignore)
        path = renders.path(
            ("disagreement", member_key([member, other]), ref, i), lambda: display(V.category_map(cats)), photo=False
        )
        names = ["both right", f"{run.name}@{epoch} right only", f"{other[0].name}@{other[1]} right only", "both wrong"]
        scores["disagreement"] = dict(zip(names, counts))
        panels.append(Panel(path, "disagreement: " + " · ".join(f"{n} {c:,}" for n, c in zip(names, counts))))
    return ImageErrors(panels, scores, f"{run.name} @ epoch {epoch} · {ref.split} image {i} (`{item}`)")


def cell_images(
    ws: Workspace, ref: DatasetRef, member: Member, a: int, b: int, thumbs_dir, *, progress: Progress | None = None
) -> tuple[list[Panel], list[int], str]:
    """Thumbnails of the images of ``ref`` with the most pixels of true class a predicted as b (most first)."""
    run, epoch = member
    stats = split_stats(ws, member, ref, progress=progress)
    top = top_images_for_cell(stats, a, b, MAX_CELL_IMAGES)
    unit = {"pixels": "px", "images": "image"}[run.task.unit]
    if not top:
        return [], [], f"No image of {ref.split} has {run.classes[a]} predicted as {run.classes[b]} at epoch {epoch}."
    paths = thumbnails(ref, [i for i, _ in top], thumbs_dir)
    panels = [Panel(p, f"{i}: {n:,} {unit}") for p, (i, n) in zip(paths, top)]
    total = int(stats.images.cell(a, b, run.num_classes).sum())
    return (
        panels,
        [i for i, _ in top],
        f"{run.classes[a]} → {run.classes[b]}: {total:,} {unit} in {ref.split}; most in image {top[0][0]}",
    )


def pixel_info(ref: DatasetRef, index: Any, member: Member, xy_display: tuple[int, int]) -> str:
    """True and predicted class of a pixel clicked on a displayed map (coordinates of the shown image)."""
    run, _ = member
    i, image, target = ref.item(index)
    pred = predict_items([member], ref, [i])[0]
    scale = display(image).shape[0] / image.shape[0]  # the map is shown enlarged by a whole factor
    x, y = (int(v // scale) for v in xy_display[:2])
    if not (0 <= y < target.shape[0] and 0 <= x < target.shape[1]):
        raise IndexError(f"pixel (y={y}, x={x}) is outside the image")
    t, p = int(target[y, x]), int(pred[y, x])
    truth = run.classes[t] if 0 <= t < run.num_classes and t != run.ignore_index else "unlabelled"
    return f"Pixel (y={y}, x={x}): true **{truth}**, predicted **{run.classes[p]}** ({'right' if t == p else 'wrong'})"


def matrix_rows(run: Run, epoch: int, shown: Sequence[int] | None = None) -> tuple[np.ndarray, list[list[Any]]]:
    """The recorded (K, K) matrix and the rows of a table of the classes ``shown`` (indices; default all): class
    name, then the counts predicted as each shown class."""
    cm = confusion_at(run, epoch)
    idx = list(range(run.num_classes)) if shown is None else [int(i) for i in shown]
    return cm, [[run.classes[i], *map(int, cm[i, idx])] for i in idx]


def matrix_view(run: Run, epoch: int, by: str = "frequency") -> tuple[np.ndarray, list[int], list[list[Any]], list[dict]]:
    """What the Confusion tab shows of the matrix recorded at ``epoch``: the (K, K) matrix, the classes of its
    heatmap (at most ``MATRIX_CLASSES``, chosen ``by`` frequency or error), their table rows, and the
    ``PAIRS`` most confused pairs over every class."""
    shown = choose_classes(confusion_at(run, epoch), MATRIX_CLASSES, by)
    cm, rows = matrix_rows(run, epoch, shown)
    return cm, shown, rows, most_confused_pairs(cm, run.classes, PAIRS)
