"""Model registry. Importing this package registers every architecture."""

from core.models._api import get_model, list_models, model_args, model_task, rebuild_model, register_model
from core.models.base import ClassificationModel, SegmentationModel, count_parameters
from core.models import unet  # noqa: F401  (registers)
from core.models import deeplabv3  # noqa: F401  (registers)
from core.models import fcn  # noqa: F401  (registers)
from core.models import fcn_baseline  # noqa: F401  (registers)
from core.models import lraspp  # noqa: F401  (registers)
from core.models import pspnet  # noqa: F401  (registers)
from core.models import resnet_fcn  # noqa: F401  (registers)
from core.models import simple_segnet  # noqa: F401  (registers)
from core.models import unet_simple  # noqa: F401  (registers)
from core.models import resunet  # noqa: F401  (registers)
from core.models import cls_densenet  # noqa: F401  (registers)
from core.models import cls_resnet  # noqa: F401  (registers)
from core.models import cls_vgg  # noqa: F401  (registers)
from core.models import small_cnn  # noqa: F401  (registers)

__all__ = [
    "ClassificationModel",
    "SegmentationModel",
    "count_parameters",
    "get_model",
    "list_models",
    "model_args",
    "model_task",
    "rebuild_model",
    "register_model",
]
