"""Analysis behind the explorer: runs by name, cached models and predictions, per-image scores.

Everything here is independent of any user interface (nothing imports gradio):

* ``Workspace`` maps run *names* (paths relative to the runs folder) to the ``Run`` objects it
  discovered; a name that was not discovered is an error, so no path from a client reaches the disk.
* ``DatasetRef`` names one split of one dataset (name, options, root). Runs trained on datasets with
  the same classes can be compared on the same images.
* Models are built lazily and kept in a bounded LRU cache; predictions are cached per
  (model, epoch, dataset split, image index), so changing an epoch back and forth, or the overlay
  opacity, does not run a model again.
* Per-image scores use ``core.metrics``; confusion-cell pixels, disagreement categories and
  hardest-image ordering are computed from cached predictions.
* History helpers turn ``run.history`` into table rows and series for the charts.
"""


from core.analysis.cache import (  # noqa: F401
    DATASETS, EMBEDDINGS, LRU, MODELS, PREDICTIONS, SPLIT_STATS, UPLOADS, clear_caches, nbytes,
)
from core.analysis.history import (  # noqa: F401
    SUMMARY_COLUMNS, class_scores, class_scores_by_epoch, confusion_at, evaluated_epochs, history_series, row_normalize,
    scored_epoch, summary_row, summary_rows,
)
from core.analysis.predictions import (  # noqa: F401
    MAX_UPLOAD_PIXELS, MAX_UPLOAD_SIDE, Member, Progress, embedding, embedding_methods, get_predictor, nearest_epoch,
    place_on_embedding, predict_image, predict_items, read_image,
)
from core.analysis.scores import (  # noqa: F401
    ClassPresence, SplitStats, cell_mask, class_presence, disagreement, error_pairs, hardest_images, image_scores,
    split_stats, top_images_for_cell, valid_pixels,
)
from core.analysis.workspace import DatasetRef, Workspace, thumbnails  # noqa: F401
