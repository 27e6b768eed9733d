"""Sweeps: many runs of one recipe over learning rates, widths, seeds or augmentations, as one table.

``table(ws)`` gives one row per run: the configuration keys whose values differ between the runs (task,
architecture, parameters, dataset, model arguments, dataset options, hyper-parameters and tags, flattened from
run.json), the scores of the best epoch, and the live state. It sorts by any column, filters by text and by a
numeric range, and groups the runs that differ only in chosen keys (typically the seed) into one row with the
mean and standard deviation of each score and the number of runs. ``parcoords`` lays the filtered runs out for
a parallel-coordinates plot. Everything is plain, JSON-able data read from run.json and history.jsonl (runs
with no weights yet included); nothing here draws.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from typing import Any, Callable, Sequence

from core.explorer.live import run_summary
from core.explorer.validation import MAX_HISTORY_RUNS, MAX_RUNS, check_count
from core.explorer.workspace import Workspace
from core.runs import Run
from core.runs.history import summary_row

# Recorded under run.json's "train" but not hyper-parameters: where data and outputs live, how the machine ran,
# statistics derived from the data, and keys shown from their own section (model arguments, dataset options).
NOT_HYPERPARAMETERS = frozenset(
    {
        "task",
        "arch",
        "model_args",
        "dataset",
        "data_options",
        "data_root",
        "out",
        "device",
        "workers",
        "threads",
        "progress",
        "cache",
        "channels_last",
        "snapshot_epochs",
        "snapshot_every",
        "logged_by",
        "class_weights",
        "rare_crop_classes",
    }
)
RESULTS = ["best epoch", "train time (min)"]  # after the scores
LIVE = ["state", "epoch", "of", "time left (min)", "snapshots"]
# A group is as far along as its slowest run and done when its last run is.
LIVE_IN_GROUP: dict[str, Callable[[list[Any]], Any]] = {"epoch": min, "of": max, "time left (min)": max, "snapshots": min}
RESERVED = {"run", "runs", "members", *RESULTS, *LIVE}
MISSING = "–"  # how a key a run does not have reads on a categorical axis


# --- one run -------------------------------------------------------------------------------------------------
def _cell(value: Any) -> Any:
    """A configuration value as one table cell: lists (sizes, scale ranges) as their JSON text."""
    return json.dumps(value) if isinstance(value, (list, tuple)) else value


def _flatten(values: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}{key}.", out)
        else:
            out[f"{prefix}{key}"] = _cell(value)


def config(run: Run) -> dict[str, Any]:
    """Every configuration key of a run, flat: task, architecture, parameters (M), dataset, ``model.<arg>`` from
    run.json's "model.args", ``data.<option>`` from the dataset options, the "train" section's hyper-parameters
    (not paths or machine settings) and ``tag.<name>`` from "tags"."""
    params = run.config["model"].get("num_params")
    out: dict[str, Any] = {
        "task": run.task.name,
        "architecture": run.arch,
        "parameters (M)": None if params is None else params / 1e6,
        "dataset": run.data.get("name"),
    }
    _flatten(run.model_args, "model.", out)
    _flatten(run.data.get("options") or {}, "data.", out)
    train = {k: v for k, v in (run.config.get("train") or {}).items() if k not in NOT_HYPERPARAMETERS}
    hparams: dict[str, Any] = {}
    _flatten(train, "", hparams)
    out.update({(f"train.{k}" if k in RESERVED or k in out else k): v for k, v in hparams.items()})
    _flatten(run.config.get("tags") or {}, "tag.", out)
    return out


def score_columns(run: Run) -> list[str]:
    """The run's scores in a table: its monitored score first, then the task's other summary scores and val loss."""
    names = [column for column, _ in run.task.summary]
    return [run.task.monitor_label] + [c for c in names if c != run.task.monitor_label] + ["val loss"]


def run_row(name: str, run: Run, *, pending: bool = False, now: float | None = None) -> dict[str, Any]:
    """One run: its configuration (``config``), its scores at the best epoch, and its live state."""
    summary = summary_row(name, run)
    live = run_summary(name, run, pending=pending, now=now)
    seconds = summary.get("train time (s)")
    return {
        "run": name,
        **config(run),
        **{c: summary.get(c) for c in score_columns(run)},
        "best epoch": summary.get("best epoch"),
        "train time (min)": None if seconds is None else seconds / 60,
        **{c: live.get(c) for c in LIVE},
    }


# --- many runs -----------------------------------------------------------------------------------------------
def _same(value: Any) -> Any:
    """What two cells are compared by: 1 and 1.0 are equal, a list is its text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def _kind(key: str) -> int:
    """Where a key's column goes: the model and data first, then their arguments and options, hyper-parameters, tags."""
    if key in ("task", "architecture", "parameters (M)", "dataset"):
        return 0
    return next(
        (i for i, prefix in enumerate(("model.", "data."), 1) if key.startswith(prefix)), 4 if key.startswith("tag.") else 3
    )


def differing_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The keys whose values differ between the runs (a key some run lacks differs): the model and dataset, model
    arguments, dataset options, hyper-parameters, then tags, each in first-seen order."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return sorted([k for k in keys if len({_same(c.get(k)) for c in configs}) > 1], key=_kind)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def numeric_columns(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """Columns whose values are all numbers (where set): those a range can filter."""
    out = []
    for c in columns:
        values = [r.get(c) for r in rows if r.get(c) is not None]
        if values and all(is_number(v) for v in values):
            out.append(c)
    return out


def matches(row: dict[str, Any], terms: Sequence[str]) -> bool:
    """Whether every term occurs (ignoring case) in some cell of the row."""
    cells = [str(v).lower() for v in row.values() if v is not None]
    return all(any(t in cell for cell in cells) for t in terms)


def filter_rows(
    rows: Sequence[dict[str, Any]],
    search: str = "",
    column: str | None = None,
    lo: float | None = None,
    hi: float | None = None,
    *,
    numeric: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The rows that contain every word of ``search`` and, when ``column`` is given, whose value in it lies in
    [``lo``, ``hi``] (either end open when None; with a bound, rows without a value are left out). ``numeric``:
    the columns a range may be set on."""
    terms = [t.lower() for t in (search or "").split()]
    out = [r for r in rows if matches(r, terms)]
    if not column:
        if lo is not None or hi is not None:
            raise ValueError("a range needs a column: choose one of " + ", ".join(numeric))
        return out
    if column not in numeric:
        raise ValueError(f"cannot filter {column!r} by a range: choose a numeric column among {', '.join(numeric) or 'none'}")
    if lo is None and hi is None:  # a column chosen, no bound typed yet: nothing to filter
        return out
    return [r for r in out if is_number(r.get(column)) and (lo is None or r[column] >= lo) and (hi is None or r[column] <= hi)]


def _order(value: Any) -> tuple:
    """A sort key that puts numbers in numeric order, then text (ignoring case)."""
    return (0, float(value), "") if is_number(value) else (1, 0.0, str(value).lower())


def sort_rows(rows: Sequence[dict[str, Any]], column: str | None, descending: bool = False) -> list[dict[str, Any]]:
    """Rows ordered by ``column`` (no column: as given); rows without a value come last either way."""
    if not column:
        return list(rows)
    valued, empty = [], []
    for r in rows:
        v = r.get(column)
        (empty if v is None or (isinstance(v, float) and math.isnan(v)) else valued).append(r)
    return sorted(valued, key=lambda r: _order(r[column]), reverse=descending) + empty


def _mean_std(values: list[Any]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the values that are set; no std for fewer than two."""
    xs = [float(v) for v in values if is_number(v)]
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def _state_of(states: list[Any]) -> str:
    counts = Counter(str(s) for s in states)
    return states[0] if len(counts) == 1 else ", ".join(f"{n} {s}" for s, n in counts.items())


def group_rows(
    rows: Sequence[dict[str, Any]], inside: Sequence[str], keys: Sequence[str], averaged: Sequence[str]
) -> list[dict[str, Any]]:
    """Runs equal in every configuration key of ``keys`` except those that vary ``inside`` a group (e.g. the seed)
    as one row each: the shared keys, the values taken inside (one, or the sorted list), the mean of each
    ``averaged`` column with its sample standard deviation in ``"<column> std"``, ``runs`` (how many) and
    ``members`` (their names). Groups come in the order of their first run."""
    inside = list(inside)
    outer = [k for k in keys if k not in inside]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(_same(r.get(k)) for k in outer), []).append(r)
    out = []
    for members in groups.values():
        first = members[0]
        row: dict[str, Any] = {"run": first["run"] if len(members) == 1 else f"{first['run']} (+{len(members) - 1})"}
        row["runs"] = len(members)
        row.update({k: first.get(k) for k in outer})
        for k in inside:
            taken = sorted({_same(m.get(k)): m.get(k) for m in members}.values(), key=_order)
            row[k] = taken[0] if len(taken) == 1 else taken
        for c in averaged:
            row[c], row[f"{c} std"] = _mean_std([m.get(c) for m in members])
        row["state"] = _state_of([m.get("state") for m in members])
        for c, pick in LIVE_IN_GROUP.items():
            values = [m.get(c) for m in members if m.get(c) is not None]
            row[c] = pick(values) if values else None
        row["members"] = [m["run"] for m in members]
        out.append(row)
    return out


def monitored(runs: Sequence[Run]) -> str | None:
    """The score the runs are ranked by: the monitored score of their task (of the most common task, if mixed)."""
    labels = Counter(r.task.monitor_label for r in runs)
    return labels.most_common(1)[0][0] if labels else None


def table(
    ws: Workspace,
    names: Sequence[str] | None = None,
    *,
    search: str = "",
    sort_by: str | None = None,
    descending: bool = False,
    range_column: str | None = None,
    range_min: float | None = None,
    range_max: float | None = None,
    group_by: Sequence[str] = (),
    now: float | None = None,
) -> dict[str, Any]:
    """The runs table of ``names`` (default: every run listed, with or without weights), filtered, grouped, sorted.

    Returns ``{"columns", "rows", "config_keys", "numeric", "score", "runs", "total", "shown", "group_by",
    "parcoords"}``: ``config_keys`` are the keys that differ between the runs (columns stay the same while
    filtering), ``runs`` the names behind the rows in their order, ``shown`` how many runs passed the filters,
    and ``parcoords`` the parallel-coordinates data of those runs (``parcoords``).
    """
    names = list(ws.listed) if names is None else check_count(names, MAX_HISTORY_RUNS)
    runs = [ws.recorded(n) for n in names]
    rows = [run_row(n, r, pending=n in ws.pending, now=now) for n, r in zip(names, runs)]
    configs = [config(r) for r in runs]  # the configuration alone: which keys differ, which a group may name
    keys = differing_keys(configs)
    score = monitored(runs)
    scores = list(dict.fromkeys(c for r in runs for c in score_columns(r)))
    scores = sorted([c for c in scores if any(row.get(c) is not None for row in rows)], key=lambda c: c != score)
    columns = ["run", *keys, *scores, *RESULTS, *LIVE]
    numeric = numeric_columns(rows, columns)
    kept = filter_rows(rows, search, range_column or None, range_min, range_max, numeric=numeric)
    shown = group(kept, list(group_by or []), keys, configs, [*scores, *RESULTS], columns) if group_by else (kept, columns)
    rows_out, columns = shown
    if sort_by and sort_by not in columns:
        raise ValueError(f"cannot sort by {sort_by!r}: choose a column among {', '.join(columns)}")
    rows_out = sort_rows(rows_out, sort_by, descending)
    return {
        "columns": columns,
        "rows": [{**{c: r.get(c) for c in columns}, "members": r.get("members", [r["run"]])} for r in rows_out],
        "config_keys": keys,
        "numeric": numeric,
        "score": score,
        "runs": [m for r in rows_out for m in r.get("members", [r["run"]])],
        "total": len(rows),
        "shown": len(kept),
        "group_by": list(group_by or []),
        "parcoords": parcoords(kept, keys, score),
    }


def group(
    rows: list[dict[str, Any]],
    inside: list[str],
    keys: list[str],
    configs: Sequence[dict[str, Any]],
    averaged: list[str],
    columns: list[str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """``group_rows`` after checking the keys, with the grouped table's columns: ``runs`` after ``run``, and each
    averaged column followed by its ``std``."""
    known = list(dict.fromkeys(k for c in configs for k in c))
    unknown = [k for k in inside if k not in known]
    if unknown:
        raise ValueError(
            f"cannot group by {', '.join(map(repr, unknown))}: choose configuration keys, e.g. among the ones that "
            f"differ: {', '.join(keys) or 'none'}"
        )
    grouped = group_rows(rows, inside, keys, averaged)
    out = ["run", "runs"]
    for c in columns[1:]:
        out += [c, f"{c} std"] if c in averaged else [c]
    return grouped, out


# --- parallel coordinates ------------------------------------------------------------------------------------
def _axis(key: str, values: list[Any]) -> dict[str, Any]:
    """One axis: numbers as they are (on a log10 scale when they span two decades or more, like learning
    rates), anything else as categories with their labels as ticks."""
    if all(is_number(v) for v in values):
        lo, hi = min(values), max(values)
        if lo > 0 and hi / lo >= 100:
            distinct = sorted(set(values))
            ticks = (
                distinct
                if len(distinct) <= 8
                else [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
            )
            return {
                "label": f"{key} (log)",
                "values": [math.log10(v) for v in values],
                "tickvals": [math.log10(t) for t in ticks],
                "ticktext": [f"{t:g}" for t in ticks],
            }
        return {"label": key, "values": list(values)}
    labels = sorted({_label(v) for v in values}, key=lambda s: (s == MISSING, _order(_num(s))))
    index = {s: i for i, s in enumerate(labels)}
    return {
        "label": key,
        "values": [index[_label(v)] for v in values],
        "tickvals": list(range(len(labels))),
        "ticktext": labels,
        "range": [-0.5, len(labels) - 0.5] if len(labels) == 1 else [0, len(labels) - 1],
    }


def _label(value: Any) -> str:
    """A category's tick label, written as the table shows it (``false``, not ``False``)."""
    return MISSING if value is None else json.dumps(value) if isinstance(value, bool) else str(value)


def _num(text: str) -> Any:
    """``"0.5"`` -> 0.5 so that categories that look like numbers sort as numbers; anything else unchanged."""
    try:
        return float(text)
    except ValueError:
        return text


def parcoords(rows: Sequence[dict[str, Any]], keys: Sequence[str], score: str | None) -> dict[str, Any]:
    """The runs as lines across one axis per configuration key that varies among them, then the ``score`` axis
    (the line colour). Runs without a score yet are left out and named in ``unscored``."""
    scored = [r for r in rows if score and is_number(r.get(score))]
    dims = []
    for k in keys:
        values = [r.get(k) for r in scored]
        if len({_same(v) for v in values}) > 1:
            dims.append(_axis(k, values))
    if score and scored:
        dims.append({"label": score, "values": [r[score] for r in scored]})
    return {
        "score": score,
        "runs": [r["run"] for r in scored],
        "color": [r[score] for r in scored],
        "dimensions": dims,
        "unscored": [r["run"] for r in rows if not (score and is_number(r.get(score)))],
    }


# --- from the table to other views ---------------------------------------------------------------------------
def compare_selection(ws: Workspace, names: Sequence[str], limit: int = MAX_RUNS) -> dict[str, Any]:
    """The selected runs that Compare can show together: those with weights that predict the classes of the first
    one's dataset, at most ``limit``. Returns ``{"source", "split", "runs", "left_out": [{"run", "reason"}]}``."""
    usable = [n for n in names if n in ws.runs]
    if not usable:
        raise ValueError("none of the selected runs has saved weights yet; Compare runs the models, so it needs them")
    source = ws.dataset(usable[0]).source
    peers = set(ws.runs_for_source(source))
    chosen: list[str] = []
    left_out = []
    for n in dict.fromkeys(names):
        if n in ws.pending:
            reason = "no saved weights yet"
        elif n not in ws.runs:
            reason = "not a usable run"
        elif n not in peers:
            reason = f"predicts other classes than {source}"
        elif len(chosen) >= limit:
            reason = f"Compare shows at most {limit} runs"
        else:
            chosen.append(n)
            continue
        left_out.append({"run": n, "reason": reason})
    return {"source": source, "split": ws.sources()[source].split, "runs": chosen, "left_out": left_out}


def add_row_runs(table: dict[str, Any], label: Any, selected: Sequence[str]) -> list[str]:
    """``selected`` and the runs behind the row of ``table`` whose "run" cell reads ``label`` (a group's members)."""
    members = next((r["members"] for r in table.get("rows", []) if r.get("run") == label), [])
    return list(dict.fromkeys([*selected, *members]))


def metrics_selection(ws: Workspace, names: Sequence[str]) -> list[str]:
    """The selected runs the Metrics tab can read (any with a run.json: it needs no weights), at most ``MAX_HISTORY_RUNS``."""
    names = check_count(list(dict.fromkeys(names or [])), MAX_HISTORY_RUNS)
    for n in names:
        ws.recorded(n)
    return names
