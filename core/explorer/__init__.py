"""The explorer's service layer: everything the app shows, computed without any user interface
(nothing here imports gradio).

* ``Workspace`` maps run *names* (paths relative to the runs folder) to the runs it discovered; a name
  that was not discovered is an error, so no client string reaches the disk. ``DatasetRef`` names one
  split of one dataset; runs with the same classes can be compared on the same images.
* Models are built lazily into a bounded LRU cache (``get_predictor``: the one road from a run to its
  outputs); predictions are cached per (model, epoch, dataset split, image), uploads by content.
* Whole-split views read evaluation results (``results``: memory, the run's ``evaluation/`` folder, or one
  pass of ``core.evaluate``; a large cold split is never computed on a click).
* ``Renders`` writes each rendered image once; ``compare``, ``errors``, ``tables``, ``maps`` and
  ``uploads`` assemble what each tab shows as file paths and plain, JSON-able data; ``sweeps`` is the runs
  table (the keys that differ between runs, sorted, filtered, seeds grouped, parallel coordinates).
"""

from core.evaluation.measures import MEASURES  # noqa: F401
from core.explorer.cache import (  # noqa: F401
    DATASETS,
    EMBEDDINGS,
    LRU,
    MODELS,
    PREDICTIONS,
    RESULTS,
    UPLOADS,
    clear_caches,
    nbytes,
)
from core.explorer.legends import legend_html, legend_path, present_classes  # noqa: F401
from core.explorer.maps import (  # noqa: F401
    embedding,
    embedding_methods,
    embeddings_unavailable,
    map_steps,
    place_on_embedding,
    placement_split,
    point_view,
)
from core.explorer.predictions import Member, Progress, get_predictor, member_key, nearest_epoch, predict_items  # noqa: F401
from core.explorer.renders import Renders  # noqa: F401
from core.explorer.results import (  # noqa: F401
    JOBS,
    NotComputed,
    ensure,
    finished_jobs,
    measure_result,
    per_image,
    provenance,
    start_job,
)
from core.explorer.splits import (  # noqa: F401
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    Page,
    SplitStats,
    hardest_for,
    hardest_images,
    page_of,
    split_stats,
    top_images_for_cell,
)
from core.explorer.uploads import (  # noqa: F401
    MAX_UPLOAD_PIXELS,
    MAX_UPLOAD_SIDE,
    Upload,
    check_upload_side,
    predict_image,
    read_image,
    read_upload,
)
from core.explorer.validation import (  # noqa: F401
    MAX_HISTORY_RUNS,
    MAX_RUNS,
    USER_ERRORS,
    check_count,
    check_method,
    class_index,
    user_message,
)
from core.explorer.workspace import DatasetRef, Workspace, thumbnails  # noqa: F401
from core.inference import EmbeddingsUnavailableError  # noqa: F401
from core.tasks import ClassificationTask, SegmentationTask, Task  # noqa: F401
