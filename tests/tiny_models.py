"""Tiny random-init models of other libraries for the hf and onnx source tests: transformers configs small enough
to build in milliseconds, and ONNX exports of torch modules. Nothing is downloaded."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

# transformers config overrides (``--model-arg config=<JSON>``): a 2-stage SegFormer, a UperNet on a 4-stage
# ConvNeXt, and two classifiers (a 2-stage ResNet, a 1-layer ViT on 32x32 images)
SEGFORMER = {
    "num_channels": 3,
    "num_encoder_blocks": 2,
    "depths": [1, 1],
    "hidden_sizes": [8, 16],
    "num_attention_heads": [1, 1],
    "decoder_hidden_size": 16,
}
UPERNET = {
    "backbone_config": {
        "model_type": "convnext",
        "hidden_sizes": [8, 16, 32, 64],
        "depths": [1, 1, 1, 1],
        "out_features": ["stage1", "stage2", "stage3", "stage4"],
    },
    "hidden_size": 16,
    "auxiliary_channels": 8,
}
RESNET = {"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1]}
VIT = {
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
}


def hf_model(model_type: str, overrides: dict, num_labels: int, *, dense: bool, seed: int = 0) -> nn.Module:
    """The raw transformers model (not wrapped) of ``model_type`` with ``overrides``, random weights, eval mode: its
    semantic-segmentation model with ``dense``, else its image classifier."""
    from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForSemanticSegmentation

    torch.manual_seed(seed)
    config = AutoConfig.for_model(model_type, **overrides, num_labels=num_labels)
    auto = AutoModelForSemanticSegmentation if dense else AutoModelForImageClassification
    return auto.from_config(config).eval()


class Outputs(nn.Module):
    """A project model as a graph to export: its logits, and its features too with ``features``."""

    def __init__(self, model: nn.Module, *, features: bool) -> None:
        super().__init__()
        self.model, self.with_features = model, features

    def forward(self, x: torch.Tensor):
        if self.model.task.dense:
            out = self.model(x, features=self.with_features)
            return (out["out"], out["features"]) if self.with_features else out["out"]
        return (self.model(x), self.model.features(x)) if self.with_features else self.model(x)


def export_onnx(model: nn.Module, path: Path, *, hw: tuple[int, int], features: bool = False, dynamic: bool = True) -> Path:
    """Export ``model`` (a project model) to ``path``: input "image", outputs "logits" (and "features"); with
    ``dynamic`` the batch, height and width are dynamic, else the graph is static at 1 x 3 x ``hw``."""
    graph = Outputs(model, features=features).eval()  # eval: the exporter restores the wrapper's mode on the model
    names = ["logits", "features"] if features else ["logits"]
    axes = {"image": {0: "batch", 2: "height", 3: "width"}} if dynamic else None
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (torch.randn(1, 3, *hw),),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=names,
            dynamic_axes=axes,
        )
    model.eval()
    return path
