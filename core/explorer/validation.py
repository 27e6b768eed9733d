"""What a client may send, checked once for every tab: how many runs, which embedding method, which class.

The run limits live here and only here. Run names and splits are checked by the ``Workspace`` (only
discovered runs and the splits their runs recorded); this module holds the checks that are not about disk.
"""

from __future__ import annotations

import logging
from typing import Sequence

from core.data import DatasetNotFoundError
from core.inference import ModelError
from core.runs import RunError

log = logging.getLogger("vision_explorer")

# What a user can cause and read a message about (a bad choice, a missing dataset, a broken run). Anything
# else is a defect: the app shows its type and logs the traceback.
USER_ERRORS = (RunError, DatasetNotFoundError, ValueError, IndexError, KeyError, FileNotFoundError, PermissionError)

MAX_RUNS = 12  # runs side by side; past this a message asks to deselect (a report shows 7 models on one image)
# Runs read from their recorded history alone (the Metrics tab): no model runs, so a whole sweep fits. Views that
# run the models (boundary IoU, calibration, segment sizes, significance) keep MAX_RUNS.
MAX_HISTORY_RUNS = 120


def check_count(names: Sequence[str] | None, limit: int = MAX_RUNS) -> list[str]:
    """The selected run names, at most ``limit`` of them."""
    names = list(names or [])
    if len(names) > limit:
        raise ValueError(f"at most {limit} runs at once; {len(names)} are selected. Deselect some.")
    return names


def range_bound(value: float | str | None, what: str) -> float | None:
    """One end of a numeric range as a client sends it (a number, or text such as ``"1e-3"``); empty means open."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a number such as 0.001 or 1e-3 (or nothing, for no bound), got {value!r}") from None


def check_method(method: str | None, available: Sequence[str]) -> str:
    """An embedding method this machine offers (``core.explorer.embedding_methods``)."""
    if method not in available:
        raise ValueError(f"unknown embedding method {method!r}; available: {', '.join(available) or 'none'}")
    return method


def class_index(classes: Sequence[str], name: str | None, what: str) -> int:
    """The index of class ``name``; anything else is a ValueError listing the classes."""
    if name not in classes:
        raise ValueError(f"choose the {what} class among: {', '.join(classes)}")
    return list(classes).index(name)


def user_message(e: BaseException) -> tuple[str, bool]:
    """``(message, expected)``: the text a user reads about ``e``, and whether a user could have caused it."""
    if isinstance(e, USER_ERRORS):
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        return msg.strip() or type(e).__name__, True
    return f"{type(e).__name__}: {e}", False


def run_failure(name: str, e: BaseException) -> str:
    """Why run ``name`` failed in its own column, row or point set (the others go on). Failures of a model itself
    (``ModelError``) and of a user's choice are expected; anything else is also logged with its traceback."""
    msg, expected = user_message(e)
    if not expected and not isinstance(e, ModelError):
        log.error("run %s failed", name, exc_info=e)
    return msg
