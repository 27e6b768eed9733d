"""Run directories: the self-describing format every other part reads and writes.

``run`` reads a directory (``load_run``, ``discover_runs``, ``Run.build_model``); ``store`` writes one
(start, commit an epoch, finish, resume state, strip for sharing); ``history`` turns history.jsonl into
table rows and series; ``ship`` makes finished runs small enough to share (``python -m core.runs.ship``).
"""

from core.runs.run import (
    EPOCH_RE,
    HISTORY_FILE,
    NO_WEIGHTS_YET,
    RUN_FILE,
    RUN_FORMAT,
    Run,
    RunError,
    best_record,
    discover_runs,
    load_run,
    read_history,
    read_run,
    run_folders,
    snapshot_path,
    weights_problem,
)
from core.runs.store import (
    commit_epoch,
    create_run,
    finish_run,
    load_state,
    prune_after,
    running_status,
    save_state,
    save_weights,
    state_path,
    strip_for_sharing,
    update_run,
    update_status,
    write_history,
)

__all__ = [
    "EPOCH_RE",
    "HISTORY_FILE",
    "NO_WEIGHTS_YET",
    "RUN_FILE",
    "RUN_FORMAT",
    "Run",
    "RunError",
    "best_record",
    "commit_epoch",
    "create_run",
    "discover_runs",
    "finish_run",
    "load_run",
    "load_state",
    "prune_after",
    "read_history",
    "read_run",
    "run_folders",
    "running_status",
    "save_state",
    "save_weights",
    "snapshot_path",
    "state_path",
    "strip_for_sharing",
    "update_run",
    "update_status",
    "weights_problem",
    "write_history",
]
