"""The questions region IoU leaves open, answered as plain data for the app: where are the boundaries
wrong (boundary IoU), is a model confident where it is wrong (calibration), is A really better than B
(paired bootstrap), does it miss small segments (recall by size), which pixels does no model get right
(consensus), and what still changes between epochs (churn)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Sequence

import numpy as np

from core import visualize as V
from core.evaluation.agreement import SIZE_NAMES, churn, consensus
from core.evaluation.calibration import confidence_error_map
from core.evaluation.measures import MEASURES
from core.evaluation.metrics import nanmean
from core.evaluation.significance import paired_bootstrap_iu, verdict
from core.explorer.compare import Panel, display, resolve_members
from core.explorer.predictions import Member, Progress, get_predictor, member_key, nearest_epoch, predict_items
from core.explorer.renders import Renders
from core.explorer.results import NotComputed, cold_check, ensure, measure_result, per_image, provenance
from core.explorer.validation import MAX_RUNS, check_count, run_failure
from core.explorer.workspace import DatasetRef, Workspace
from core.runs.history import spread_epochs

CONSENSUS_COLORS = ((213, 94, 0), (240, 228, 66), (0, 158, 115))  # none right, some, all right
CONFIDENCE_COLORS = ((200, 200, 200), (86, 180, 233), (230, 159, 0), (213, 94, 0))
CONFIDENCE_NAMES = ("right and sure", "right but unsure", "wrong and unsure", "wrong and confident")


def _members(
    ws: Workspace, names: Sequence[str], epoch: Any, split: str, limit: int = MAX_RUNS
) -> list[tuple[str, Member, DatasetRef]]:
    if not names:
        raise ValueError("select at least one run")
    names = check_count(names, limit)
    return [(n, (ws.run(n), nearest_epoch(ws.run(n), epoch)), ws.run_split(n, split)) for n in names]


def selection(ws: Workspace, names: Sequence[str], epoch: Any, split: str) -> list[tuple[Member, DatasetRef]]:
    """The selected runs at ``epoch`` on ``split``, checked (discovered runs, their dataset's splits, the run limit)."""
    return [(member, ref) for _, member, ref in _members(ws, names, epoch, split)]


def _none(v: float) -> float | None:
    return None if v is None or np.isnan(v) else float(v)


def _each_run(members: list, progress: Progress | None, measure) -> list[dict[str, Any]]:
    """``measure(name, member, ref, progress)`` for every run; a run that fails (its model raises, returns NaN, or
    the measure does not apply to it) becomes a row with the reason, and the others are still measured."""
    out = []
    for j, (name, member, ref) in enumerate(members):
        sub = None if progress is None else (lambda f, m, j=j: progress((j + f) / len(members), m))
        try:
            out.append(measure(name, member, ref, sub))
        except NotComputed:
            raise  # a large cold split: the advice covers every run at once
        except Exception as e:  # noqa: BLE001  (one faulty run never takes the others down)
            out.append({"run": name, "epoch": member[1], "classes": member[0].classes, "error": run_failure(name, e)})
    return out


def measure_table(
    ws: Workspace, names: Sequence[str], epoch: Any, split: str, measure: str, *, progress: Progress | None = None
) -> dict[str, Any]:
    """One registered measure's result for each run at ``epoch`` on ``split``: read from the runs' evaluation
    results, or computed by one pass (``core.explorer.results``). Rows: run, epoch, classes, the result's keys,
    and where it was computed; a failed run's row has "error"."""
    m = MEASURES.get(measure)
    members = _members(ws, names, epoch, split)
    cold_check(ws, [(member, ref) for _, member, ref in members if m.applies(member[0].task)], [m])

    def one(name, member, ref, sub) -> dict[str, Any]:
        if not m.applies(member[0].task):
            raise ValueError(f"run {name} is a {member[0].task.name} run: {m.title.lower()} is for segmentation")
        ensure(ws, [(member, ref)], [m], progress=sub)  # a pass, if one is needed, computes every measure
        result = measure_result(member, ref, measure)
        return {"run": name, "epoch": member[1], "classes": member[0].classes, **result, "source": provenance(member, ref)}

    view = m.view
    return {
        "split": split,
        "measure": measure,
        "title": m.title,
        "view": None if view is None else asdict(view),
        "unit": members[0][1][0].task.unit,
        "runs": _each_run(members, progress, one),
    }


def boundary_table(ws: Workspace, names: Sequence[str], epoch: Any, split: str, *, progress: Progress | None = None) -> dict:
    """Per run and class: region IoU, boundary IoU and min(IoU, boundary IoU) on ``split`` at ``epoch``."""
    return measure_table(ws, names, epoch, split, "boundary", progress=progress)


def calibration_table(ws: Workspace, names: Sequence[str], epoch: Any, split: str, *, progress: Progress | None = None) -> dict:
    """Per run: expected calibration error (15 bins), per-class ECE and the reliability diagram's bins."""
    return measure_table(ws, names, epoch, split, "calibration", progress=progress)


def segment_table(ws: Workspace, names: Sequence[str], epoch: Any, split: str, *, progress: Progress | None = None) -> dict:
    """Per run and class: the recall of ground-truth segments in small, medium and large area bins."""
    table = measure_table(ws, names, epoch, split, "segment_sizes", progress=progress)
    return {**table, "bins": list(SIZE_NAMES)}


def significance(
    ws: Workspace,
    run_a: str,
    epoch_a: Any,
    run_b: str,
    epoch_b: Any,
    split: str,
    *,
    resamples: int = 1000,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Per-image mIoU of both runs and a paired bootstrap of the difference in dataset mIoU and per-class IoU."""
    (na, ma, ra), (nb, mb, rb) = _members(ws, [run_a, run_b], None, split)
    ma, mb = (ma[0], nearest_epoch(ma[0], epoch_a)), (mb[0], nearest_epoch(mb[0], epoch_b))
    if ra != rb or ma[0].classes != mb[0].classes:
        raise ValueError(f"{run_a} and {run_b} are not scored on the same images with the same classes")
    ensure(ws, [(ma, ra), (mb, rb)], [MEASURES.get("per_image")], progress=progress)
    pa, pb = per_image(ma, ra), per_image(mb, rb)
    result = paired_bootstrap_iu(pa.iu, pb.iu, resamples=resamples, seed=seed)
    name_a, name_b = f"{run_a}@{ma[1]}", f"{run_b}@{mb[1]}"
    per_a, per_b = pa.score, pb.score
    return {
        **result,
        "run_a": name_a,
        "run_b": name_b,
        "classes": ma[0].classes,
        "split": split,
        "seed": seed,
        "per_image_a": [_none(v) for v in per_a],
        "per_image_b": [_none(v) for v in per_b],
        "mean_per_image_a": _none(nanmean(per_a)),
        "mean_per_image_b": _none(nanmean(per_b)),
        "verdict": verdict(result, name_a, name_b, ma[0].classes),
        "source": provenance(ma, ra),
    }


def agreement(
    ws: Workspace,
    renders: Renders,
    ref: DatasetRef,
    index: Any,
    names: Sequence[str],
    epochs: Sequence[Any] | None,
    *,
    unsure: float = 0.5,
) -> tuple[list[Panel], dict[str, Any]]:
    """On one image: the consensus map of the runs (how many get each pixel right) and each run's
    confidence-versus-error map (wrong and confident, wrong and unsure, right and unsure). A run that fails
    is left out of the consensus and listed with its reason under "failed"."""
    names = ws.check_runs(names, ref)
    if not names or not ref.open().task.dense:
        raise ValueError("select one or more segmentation runs")
    i, image, target = ref.item(index)
    ds = ref.open()
    probs, failed = {}, []
    for name, member in zip(names, resolve_members(ws, names, epochs)):
        try:
            probs[name] = (member, get_predictor([member]).predict([image])[0].probs)  # (K, H, W)
        except Exception as e:  # noqa: BLE001  (one faulty run never takes the others down)
            failed.append({"run": name, "epoch": member[1], "error": run_failure(name, e)})
    if not probs:
        raise ValueError("every selected run failed on this image: " + "; ".join(f["error"] for f in failed))
    members = [m for m, _ in probs.values()]
    right, none = consensus([p.argmax(0) for _, p in probs.values()], target, len(ds.classes), ds.ignore_index)
    n = len(members)
    ends = list(zip(CONSENSUS_COLORS[0], CONSENSUS_COLORS[2]))  # (none right, all right) per channel
    colors = [tuple(int(a + (b - a) * j / max(1, n)) for a, b in ends) for j in range(n + 1)]
    key = ("consensus", member_key(members), ref, i)
    caption = f"consensus: dark orange = no run right ({int(none.sum()):,} px), green = all {n} right"
    panels = [Panel(renders.path(key, lambda: display(V.category_map(right, colors)), photo=False), caption)]
    rows = []
    for name, (member, p) in probs.items():
        cat = confidence_error_map(p, target, ds.ignore_index, unsure)
        counts = np.bincount(cat[cat != 255], minlength=4)[:4]
        path = renders.path(
            ("confidence", unsure) + key + (member_key([member]),),
            lambda: display(V.category_map(cat, CONFIDENCE_COLORS)),
            photo=False,
        )
        panels.append(Panel(path, f"{name} @ {member[1]}: wrong and confident {int(counts[3]):,} px"))
        rows.append({"run": name, "epoch": member[1], **{c: int(v) for c, v in zip(CONFIDENCE_NAMES, counts)}})
    return panels, {
        "image": i,
        "labelled_pixels": int((right != 255).sum()),
        "right_by": np.bincount(right[right != 255], minlength=n + 1).tolist(),
        "none_right_by_class": dict(zip(ds.classes, none.tolist())),
        "confidence": rows,
        "unsure_above": unsure,
        "failed": failed,
    }


def epoch_churn(
    ws: Workspace, renders: Renders, ref: DatasetRef, index: Any, name: str, *, limit: int = 12
) -> tuple[list[Panel], dict[str, Any]]:
    """Between consecutive saved epochs of one run: the pixels whose predicted class changed on the image,
    their count per true class, and the fraction changed on the image and, where cached, on the whole split."""
    from core.explorer.cache import PREDICTIONS

    ws.check_runs([name], ref, 1)
    run = ws.run(name)
    if not run.task.dense:
        raise ValueError("churn is for segmentation runs")
    i, image, target = ref.item(index)
    ds = ref.open()
    epochs = spread_epochs(run.epochs or [run.last_epoch], limit)
    preds = [predict_items([(run, e)], ref, [i])[0] for e in epochs]
    panels, steps = [], []
    n_items = ref.size()
    for (e0, p0), (e1, p1) in zip(zip(epochs, preds), zip(epochs[1:], preds[1:])):
        changed, counts, fraction = churn(p0, p1, target, len(ds.classes), ds.ignore_index)
        key = ("churn", str(run.path), e0, e1, ref, i)
        panels.append(
            Panel(renders.path(key, lambda: display(V.highlight(image, changed))), f"{e0} → {e1}: {100 * fraction:.1f}% changed")
        )
        split_fraction = None
        cached = [PREDICTIONS.get((member_key([(run, e)]), ref, j)) for e in (e0, e1) for j in range(n_items)]
        if all(c is not None for c in cached):  # the whole split, when both epochs' predictions are in the cache
            a, b = cached[:n_items], cached[n_items:]
            split_fraction = float(
                np.mean([churn(x, y, ref.load(j)[1], len(ds.classes), ds.ignore_index)[2] for j, (x, y) in enumerate(zip(a, b))])
            )
        steps.append(
            {
                "from": e0,
                "to": e1,
                "fraction": fraction,
                "split_fraction": split_fraction,
                "by_class": dict(zip(ds.classes, counts.tolist())),
            }
        )
    return panels, {"run": name, "image": i, "steps": steps}
