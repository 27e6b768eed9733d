"""Model registry. Importing this package registers every architecture."""

from core.models import (
    cgnet,  # noqa: F401  (registers)
    cls_densenet,  # noqa: F401  (registers)
    cls_resnet,  # noqa: F401  (registers)
    cls_vgg,  # noqa: F401  (registers)
    dabnet,  # noqa: F401  (registers)
    deeplabv3,  # noqa: F401  (registers)
    fcn,  # noqa: F401  (registers)
    fcn_baseline,  # noqa: F401  (registers)
    lraspp,  # noqa: F401  (registers)
    pspnet,  # noqa: F401  (registers)
    resnet_fcn,  # noqa: F401  (registers)
    resunet,  # noqa: F401  (registers)
    simple_segnet,  # noqa: F401  (registers)
    small_cnn,  # noqa: F401  (registers)
    unet,  # noqa: F401  (registers)
    unet_simple,  # noqa: F401  (registers)
)
from core.models._api import get_model, list_models, model_args, model_task, rebuild_model, register_model
from core.models.base import ClassificationModel, SegmentationModel, count_parameters
from core.models.sources import (
    arch_arguments,
    arch_task,
    build_arch,
    describe_model,
    list_sources,
    load_stored_state,
    split_arch,
    stored_state,
)

__all__ = [
    "arch_arguments",
    "arch_task",
    "build_arch",
    "describe_model",
    "list_sources",
    "load_stored_state",
    "split_arch",
    "stored_state",
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
