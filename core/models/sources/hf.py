"""``hf:``: Hugging Face transformers' semantic-segmentation and image-classification models, built from a
config and never from the Hub.

Names are transformers' ``model_type``: ``hf:segformer``, ``hf:upernet``, ``hf:resnet``, ``hf:vit``. A type with
both kinds of model (segformer, beit, mobilevit, ...) is its segmentation model under its own name and its
classifier as ``hf:<type>-classifier``. The one argument is the config::

    --model-arg config='{"num_encoder_blocks": 2, "depths": [1, 1], "hidden_sizes": [8, 16]}'  # overrides of the defaults
    --model-arg config=path/to/config.json          # or a save_pretrained folder (its config.json)

A run records the whole config dict (``{"config": {...}}``), never a path, so it rebuilds with no network and no
file outside the run. A ``save_pretrained`` folder's weights come in with ``python -m core.train.import_run
FOLDER`` (``read_checkpoint``), and its ``preprocessor_config.json`` gives the run's normalisation and input size
(``preprocessing``); training from ``--model-arg config=FOLDER`` starts from random weights, as every engine run
without pretrained weights does.

``trust_remote_code`` is never used: a config that needs custom code (``auto_map``, a ``model_type`` transformers
does not know) or that names a backbone to fetch (``backbone``, ``use_pretrained_backbone``) is refused, with
the reason, whether it comes from the command line, a folder or a run directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.models.base import EmbeddingsUnavailableError, SegmentationModel, crop_to_input
from core.models.sources.base import ModelSource, Preprocessing, Wrapped, json_args
from core.models.sources.tv import TvClassifier
from core.tasks import ClassificationTask, SegmentationTask, Task

CLASSIFIER = "-classifier"  # hf:segformer-classifier: the classifier of a type that also segments
BOOKKEEPING = ("transformers_version", "_name_or_path", "architectures", "_commit_hash", "dtype", "torch_dtype")
CLASS_KEYS = ("num_labels", "id2label", "label2id")  # the dataset sets the classes
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
PROCESSOR_FILE = "preprocessor_config.json"


class HfSegmentation(Wrapped, SegmentationModel):
    """A transformers segmentation model under the project's contract.

    The logits are the library's, upsampled (bilinear) to the input's size as its own post-processing does:
    SegFormer's come at 1/4 of it, UperNet's at full size. Inputs are passed unpadded (``size_divisor`` 1),
    as transformers' image processors pass them. ``features`` is what the decode head reads: the model's
    hidden states (``output_hidden_states=True``, no hooks) that are feature maps, brought to the finest one's
    resolution and concatenated. Their layout differs per family, so ``feature_dim`` is measured on the first
    pass that asks for features.
    """

    def __init__(self, net: nn.Module, *, num_classes: int, in_channels: int = 3) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.net = net
        self.size_divisor = 1

    def forward(self, x: Tensor, *, features: bool = False) -> dict[str, Tensor]:
        x = self.prepare(x)
        hw = (x.shape[-2], x.shape[-1])
        out = self.net(pixel_values=x, output_hidden_states=features)
        result = {"out": crop_to_input(out.logits, hw, hw, resize=True)}  # (B, K, H, W)
        if features:
            result["features"] = pyramid(out.hidden_states)  # (B, C, h, w)
            self.feature_dim = result["features"].shape[1]
        return result


def pyramid(hidden_states: tuple[Tensor, ...]) -> Tensor:
    """The hidden states that are maps (B, C_i, h_i, w_i), each resized to the largest and concatenated: (B, sum C_i, h, w)."""
    maps = [h for h in hidden_states if h.dim() == 4]
    if not maps:
        raise EmbeddingsUnavailableError(
            "this transformers model's hidden states are token sequences, not feature maps, so it has no per-pixel features"
        )
    size = max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1])
    return torch.cat(
        [m if m.shape[-2:] == size else F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps], 1
    )


class HfClassifier(TvClassifier):
    """A transformers classifier under the project's contract: its final linear layer (``classifier``) is moved
    out, so the model's ``logits`` are the pooled embedding that layer reads (``features``) and ``head`` is the
    layer; ``stored_state`` puts it back under its own name, so the weights are the library's state dict."""

    def __init__(self, net: nn.Module, *, num_classes: int, in_channels: int = 3) -> None:
        super().__init__(net, num_classes=num_classes, in_channels=in_channels)
        if self.fc.out_features != num_classes:
            raise ValueError(
                f"{type(net).__name__}'s last linear layer ({self.fc_path}) has {self.fc.out_features} outputs, not one "
                f"per class ({num_classes}); it is not the classifier, so there is no embedding to serve"
            )

    def features(self, x: Tensor) -> Tensor:
        return self.net(pixel_values=x).logits  # (B, D): the classifier layer is an identity here

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))  # (B, K)


def _class_names(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return () if value is None else (value,) if isinstance(value, str) else tuple(value)


def refusals(node: Any, known_types: set[str], where: str = "config") -> list[str]:
    """Why a config (a dict, searched through nested configs such as ``backbone_config``) cannot be built
    without custom code or a download; empty if it can."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("auto_map"):
            found.append(
                f"{where}.auto_map names custom code ({node['auto_map']}); it would need trust_remote_code, never used here"
            )
        kind = node.get("model_type")
        if kind is not None and kind not in known_types:
            found.append(
                f"{where}.model_type {kind!r} is not a model type of transformers: it would need custom code "
                "(trust_remote_code), never used here"
            )
        if node.get("backbone"):
            found.append(
                f"{where}.backbone {node['backbone']!r} names a backbone to fetch from the Hub or timm; "
                "give its backbone_config (a dict) instead"
            )
        if node.get("use_pretrained_backbone"):
            found.append(f"{where}.use_pretrained_backbone would download weights; a run's weights come from the run")
        for key, value in node.items():
            found += refusals(value, known_types, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += refusals(value, known_types, f"{where}[{i}]")
    return found


def _without(node: Any, keys: tuple[str, ...]) -> Any:
    """``node`` with ``keys`` dropped from every config dict in it (nested ones too)."""
    if isinstance(node, dict):
        return {k: _without(v, keys) for k, v in node.items() if not ("model_type" in node and k in keys)}
    if isinstance(node, list):
        return [_without(v, keys) for v in node]
    return node


def _check_class_count(raw: dict[str, Any], num_classes: int) -> None:
    """The dataset sets the class count: a config dict may repeat it (a model's own config does), never change it."""
    counts = {k: raw[k] if k == "num_labels" else len(raw[k]) for k in CLASS_KEYS if raw.get(k) is not None}
    wrong = {k: n for k, n in counts.items() if n != num_classes}
    if wrong:
        raise ValueError(f"hf: the dataset sets the classes ({num_classes}); the config's {wrong} would change that: drop them")


def read_config_file(path: Path) -> dict[str, Any]:
    """The config dict of a ``config.json`` or of a ``save_pretrained`` folder holding one."""
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(
            f"hf: config={str(path)!r} is neither a JSON dict, a config.json nor a folder holding one; "
            "Hub names are not fetched (no network): save_pretrained the model to a local folder first"
        )
    try:
        config = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"hf: {file} is not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise ValueError(f"hf: {file} must hold a JSON object")
    return config


class HfSource(ModelSource):
    prefix = "hf"
    package = "transformers"
    pip = "transformers"
    naming = (
        "hf:<model_type> (segformer, upernet, dpt, ...; classifiers resnet, vit, convnext, ...; <type>-classifier where a "
        "type has both), config with --model-arg config=<JSON dict of overrides | config.json | save_pretrained folder>"
    )

    # --- transformers' tables ------------------------------------------------------------------------------
    def _tables(self) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
        """transformers' segmentation and classification model classes by model type, and every config type."""
        self.module()  # a clear error if transformers is not installed
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
            MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES,
        )

        return (
            MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES,
            MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
            set(CONFIG_MAPPING_NAMES),
        )

    # --- names ---------------------------------------------------------------------------------------------
    def _catalogue(self) -> dict[str, tuple[str, type[Task]]]:
        """Every name, with its model type and task: the segmentation models under their type, the classifiers under
        theirs, or as ``<type>-classifier`` where the type also segments."""
        seg, cls, _ = self._tables()
        found = {t: (t, SegmentationTask) for t in seg}
        found.update({(f"{t}{CLASSIFIER}" if t in seg else t): (t, ClassificationTask) for t in cls})
        return found

    def names(self, task: type[Task] | None = None) -> list[str]:
        return sorted(n for n, (_, kind) in self._catalogue().items() if task is None or kind is task)

    def _resolve(self, name: str) -> tuple[str, type[Task]]:
        """``(model_type, task)`` of a name; a ValueError listing valid names otherwise."""
        return self._catalogue()[self.check_name(name)]

    def task(self, name: str) -> type[Task]:
        return self._resolve(name)[1]

    def _name(self, model_type: str, task: type[Task]) -> str:
        seg, _, _ = self._tables()
        return f"{model_type}{CLASSIFIER}" if not task.dense and model_type in seg else model_type

    def _auto(self, task: type[Task]) -> Any:
        transformers = self.module()
        return transformers.AutoModelForSemanticSegmentation if task.dense else transformers.AutoModelForImageClassification

    # --- configs -------------------------------------------------------------------------------------------
    def _config(self, model_type: str, raw: dict[str, Any], *, overrides: bool) -> Any:
        """transformers' config object of ``model_type`` from a config dict (``overrides``: of its defaults, whose
        keys must exist, so a misspelt one is an error), refused if it needs custom code or a download."""
        _, _, known = self._tables()
        problems = refusals(raw, known)
        if problems:
            raise ValueError("hf: the config is refused: " + "; ".join(problems))
        given = raw.get("model_type", model_type)
        if given != model_type:
            raise ValueError(f"hf: the config is of model type {given!r}, not {model_type!r}; name the model hf:{given}")
        from transformers import CONFIG_MAPPING

        config_class = CONFIG_MAPPING[model_type]
        if overrides:
            valid = set(config_class().to_dict()) - set(BOOKKEEPING)
            unknown = sorted(set(raw) - valid)
            if unknown:
                raise ValueError(f"hf: {model_type} configs have no key(s) {unknown}; valid keys: {', '.join(sorted(valid))}")
        return config_class.from_dict({k: v for k, v in raw.items() if k not in BOOKKEEPING and k != "model_type"})

    def _recorded(self, config: Any) -> dict[str, Any]:
        """The config as run.json records it: every key (so another transformers version's defaults cannot change
        the model), without bookkeeping and without the classes (the dataset sets them)."""
        return json_args("hf", _without(config.to_dict(), BOOKKEEPING + CLASS_KEYS))

    # --- models --------------------------------------------------------------------------------------------
    def arguments(self, name: str, args: dict[str, Any], *, num_classes: int) -> dict[str, Any]:
        model_type, _ = self._resolve(name)
        unknown = sorted(set(args) - {"config"})
        if unknown:
            raise ValueError(
                f"hf: unknown argument(s) {unknown}; the one argument is config=<JSON dict of overrides, a config.json "
                "or a save_pretrained folder>"
            )
        given = args.get("config", {})
        if isinstance(given, str):
            raw, overrides = read_config_file(Path(given)), False
        elif isinstance(given, dict):
            raw, overrides = given, True
        else:
            raise ValueError(f"hf: config must be a JSON dict or a path, got {type(given).__name__}")
        if overrides:
            _check_class_count(raw, num_classes)
        config = self._config(model_type, {k: v for k, v in raw.items() if k not in CLASS_KEYS}, overrides=overrides)
        config.num_labels = num_classes
        return {"config": {**self._recorded(config), "num_labels": num_classes}}

    def build(self, name: str, args: dict[str, Any], *, pretrained: bool = False, folder: Path | None = None) -> nn.Module:
        """The model of a recorded config (never a path: run.json holds the config itself); random weights, which
        the run's snapshot replaces. ``pretrained`` has nothing to fetch: hf models name no weights."""
        model_type, task = self._resolve(name)
        recorded = args.get("config")
        if not isinstance(recorded, dict):
            raise ValueError("hf: the model's config must be recorded as a dict (run.json never names a config file)")
        config = self._config(model_type, recorded, overrides=False)
        net = self._auto(task).from_config(config, trust_remote_code=False)
        wrapper = HfSegmentation if task.dense else HfClassifier
        return wrapper(net, num_classes=config.num_labels, in_channels=getattr(config, "num_channels", 3))

    def describe(self, model: nn.Module) -> tuple[str, dict[str, Any]] | None:
        """``hf:<model_type>`` and the config of a transformers model (or of its wrapper), from ``model.config``."""
        net = model.net if isinstance(model, (HfSegmentation, HfClassifier)) else model
        if not type(net).__module__.startswith("transformers.") or getattr(net, "config", None) is None:
            return None
        seg, cls, _ = self._tables()
        model_type = net.config.model_type
        if type(net).__name__ in _class_names(seg.get(model_type)):
            task = SegmentationTask
        elif type(net).__name__ in _class_names(cls.get(model_type)):
            task = ClassificationTask
        else:
            return None
        return self._name(model_type, task), {"config": self._recorded(net.config)}

    # --- checkpoints ---------------------------------------------------------------------------------------
    def read_checkpoint(self, path: Path) -> tuple[str, dict[str, Any], dict[str, Tensor]] | None:
        """A ``save_pretrained`` folder: config.json (with a ``model_type``) and model.safetensors or pytorch_model.bin.

        The weights are read by transformers itself (``from_pretrained``, local files only, ``weights_only=True``
        for a .bin), so checkpoints saved under older tensor names are renamed as transformers does; a tensor the
        folder lacks or has in another shape is an error, never a silently random weight."""
        if not (path.is_dir() and (path / "config.json").is_file()):
            return None
        raw = read_config_file(path)
        if "model_type" not in raw or "_model_class" in raw:  # not a transformers folder (smp writes _model_class)
            return None
        problems = refusals(raw, self._tables()[2])
        if problems:
            raise ValueError(f"hf: the config of {path} is refused: " + "; ".join(problems))
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            sharded = sorted(p.name for p in path.glob("*.index.json"))
            hint = (
                f" (sharded checkpoints, {', '.join(sharded)}, are not read: save with a larger max_shard_size)"
                if sharded
                else ""
            )
            raise ValueError(f"hf: {path} has a config.json but no {' or '.join(WEIGHT_FILES)}{hint}")
        model_type, task = self._checkpoint_kind(path, raw)
        config = self._config(model_type, raw, overrides=False)
        net, info = self._auto(task).from_pretrained(
            path, config=config, local_files_only=True, trust_remote_code=False, weights_only=True, output_loading_info=True
        )
        unfit = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if unfit:
            raise ValueError(f"hf: the weights in {path} do not fit its config.json: {unfit}")
        recorded = {"config": self._recorded(config)}
        return self._name(model_type, task), recorded, net.state_dict()

    def _checkpoint_kind(self, path: Path, raw: dict[str, Any]) -> tuple[str, type[Task]]:
        """The model type and task of a folder's config: its ``architectures`` entry says which head it has."""
        seg, cls, _ = self._tables()
        model_type = raw["model_type"]
        architecture = (raw.get("architectures") or [None])[0]
        if architecture is None:
            if model_type not in seg and model_type not in cls:
                raise ValueError(f"hf: {path}: model type {model_type!r} has no segmentation or classification model")
            return model_type, SegmentationTask if model_type in seg else ClassificationTask
        segmenters, classifiers = _class_names(seg.get(model_type)), _class_names(cls.get(model_type))
        if architecture in segmenters:
            return model_type, SegmentationTask
        if architecture in classifiers:
            return model_type, ClassificationTask
        raise ValueError(
            f"hf: {path} holds a {architecture}, which is neither a semantic-segmentation model nor an image classifier "
            f"of transformers (for {model_type!r}: {', '.join(segmenters + classifiers) or 'none'})"
        )

    def preprocessing(self, path: Path) -> Preprocessing | None:
        """The normalisation and size of a folder's ``preprocessor_config.json`` (transformers' image processor).

        transformers multiplies pixels by ``rescale_factor`` then normalises; this project divides by 255 then
        normalises, so mean and std are scaled by 1 / (255 * rescale_factor) (unchanged for the usual 1/255).
        A size given as ``shortest_edge`` cannot be one fixed (H, W): a note says so, and the size is left to
        ``--size`` or the dataset."""
        file = path / PROCESSOR_FILE
        if not (path.is_dir() and file.is_file()):
            return None
        cfg = read_config_file(file)
        factor = float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0
        scale = 1.0 / (255.0 * factor)
        mean, std = ([0.0] * 3, [1.0] * 3) if not cfg.get("do_normalize", True) else (cfg.get("image_mean"), cfg.get("image_std"))
        found = Preprocessing(origin=PROCESSOR_FILE)
        if mean is not None and std is not None:
            found.mean, found.std = [float(m) * scale for m in mean], [float(s) * scale for s in std]
        size = cfg.get("size") if cfg.get("do_resize", True) else None
        if isinstance(size, dict) and {"height", "width"} <= set(size):
            found.size = (int(size["height"]), int(size["width"]))
        elif isinstance(size, int):
            found.size = (size, size)
        elif size is not None:
            found.notes.append(f"{PROCESSOR_FILE} resizes by {size}, which is not one fixed (H, W); give --size H W for it")
        if cfg.get("do_center_crop"):
            found.notes.append(f"{PROCESSOR_FILE} also centre-crops to {cfg.get('crop_size')}; the run does not crop")
        return found
