"""The model registry: every builder is a named, typed, keyword-only function at module level, as in torchvision."""

from __future__ import annotations

import inspect
import sys

import pytest

from core.models import get_model, list_models
from core.models._api import MODELS
from core.utils.registry import UnknownNameError


@pytest.mark.parametrize("name", list_models())
def test_every_builder_is_a_named_typed_keyword_only_module_function(name: str):
    builder = MODELS.get(name)
    module = sys.modules[builder.__module__]
    assert builder.__name__ == name and getattr(module, name) is builder, f"{name}: define `def {name}(...)` at module level"
    sig = inspect.signature(builder)
    assert sig.parameters and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values()), name
    assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), f"{name}: annotate every argument"
    assert sig.return_annotation is not inspect.Signature.empty and builder.__doc__, f"{name}: a return type and a docstring"
    assert "num_classes" in sig.parameters


def test_unknown_names_and_arguments_list_the_valid_ones():
    with pytest.raises(UnknownNameError, match="unknown model 'unet3'; valid names: .*unet"):
        get_model("unet3", num_classes=2)
    with pytest.raises(TypeError, match="unknown argument.*base_widht.*valid arguments: .*base_width"):
        get_model("unet", num_classes=2, base_widht=4)
