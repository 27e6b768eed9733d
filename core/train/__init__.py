"""Making runs: the training engine (``python -m core.train``), its configuration, ``RunWriter`` for your
own training loop, and ``import_run`` for a model trained elsewhere (``python -m core.train.import_run``).
"""

from core.train.config import TrainConfig
from core.train.session import main, train

__all__ = ["TrainConfig", "main", "train"]
