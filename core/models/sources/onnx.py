"""``onnx:``: an ``.onnx`` graph served through onnxruntime (on CPU, or CUDA where its provider is installed).

``onnx:segmentation`` or ``onnx:classification``, told by the rank of the graph's logits. A graph comes in with
``python -m core.train.import_run model.onnx --dataset ... --out DIR``, which keeps the file in the run
directory, and run.json names it relative to that directory with the graph's input and outputs::

    "model": {"source": "onnx", "name": "segmentation",
              "args": {"file": "weights/model.onnx", "input": "image", "output": "logits",
                       "features_output": null, "num_classes": 11}}

A file named outside the run directory (an absolute path, ``..``, a symlink that leads out) is refused, so a run
directory never makes the app read another file. The graph has no torch weights: its adapter has no parameters,
so its one epoch's snapshot (``weights/epoch_0001.safetensors``) holds no tensors, and the epoch list,
``Run.build_model``, ``weights_problem`` and ``core.runs.ship`` treat the run like any other; training and
resuming are refused (``untrainable``). Features come from a named output (``features_output``); without one the
adapter says its embeddings are unavailable, and why, instead of failing.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.models.base import ClassificationModel, EmbeddingsUnavailableError, SegmentationModel
from core.models.sources.base import ModelSource, SourceUnavailableError, json_args
from core.tasks import Task, all_tasks, task_type

ONNX_FILE = "weights/model.onnx"  # where import_run keeps the graph in a run directory
ARGS = ("file", "input", "output", "features_output")
UNTRAINABLE = (
    "an ONNX graph is served by onnxruntime and has no torch weights to train, so its runs cannot be trained or "
    "resumed; bring a graph in with python -m core.train.import_run model.onnx --dataset ... --out DIR"
)


def relative_file(file: Any) -> str:
    """``file`` if it is a relative path that stays inside its folder (no absolute path, drive or ``..``)."""
    if not isinstance(file, str) or not file:
        raise ValueError(f"onnx: file must be a path relative to the run directory, got {file!r}")
    if PurePosixPath(file).is_absolute() or PureWindowsPath(file).drive or ".." in PurePosixPath(file.replace("\\", "/")).parts:
        raise ValueError(
            f"onnx: file {file!r} points outside the run directory; a run names its graph relative to its own folder "
            f"(such as {ONNX_FILE!r}), and nothing outside it is read"
        )
    return file


def inside(folder: Path, file: Any) -> Path:
    """The graph ``file`` of the run directory ``folder``; refused if it leads out of it (symlinks resolved) or is missing."""
    path = (folder / relative_file(file)).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ValueError(f"onnx: {file} leads outside the run directory {folder} (a symlink); nothing outside it is read")
    if not path.is_file():
        raise ValueError(
            f"onnx: the run directory {folder} has no {file}; a graph is brought into a run with "
            "python -m core.train.import_run model.onnx --dataset ... --out DIR"
        )
    return path


def shape_text(dims: list[Any]) -> str:
    """``1x3x512x512``, with the names of dynamic dimensions (``batchx3xheightxwidth``)."""
    return "x".join("?" if d is None else str(d) for d in dims)


class OnnxGraph:
    """An onnxruntime session on one file, and the shapes its inputs and outputs declare.

    onnxruntime runs on as many threads as torch was given (the app and the benchmarks set them at start-up),
    on CUDA when its execution provider is installed, else on the CPU."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise SourceUnavailableError("models of source 'onnx' need the package 'onnxruntime': pip install onnxruntime") from e
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # noqa: BLE001  (onnxruntime's own error types: any of them means an unusable file)
            raise ValueError(
                f"onnx: {path.name} is not a graph onnxruntime can load ({type(e).__name__}: {e}); a graph with external "
                "data files must be saved as one file (onnx.save(model, path, save_as_external_data=False))"
            ) from e
        self.path = path
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = {o.name: o for o in self.session.get_outputs()}

    def dims(self, name: str) -> list[Any]:
        """The declared shape of an input or output: ints where static, names (or None) where dynamic."""
        node = self.inputs.get(name) or self.outputs[name]
        return list(node.shape)

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(names, feed)


def _static(d: Any) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


class OnnxAdapter:
    """What both ONNX adapters share: the graph, its input and outputs checked against the task and the class
    count, and one run of the graph on a batch (image by image for a graph with a static batch of 1)."""

    graph: OnnxGraph
    num_classes: int

    def _connect(self, graph: OnnxGraph, task: type[Task], args: dict[str, Any]) -> None:
        self.graph, outputs = graph, list(graph.outputs)
        self.input = self._input(args.get("input"))
        self.features_output = args.get("features_output")
        self.output = args.get("output") or next((o for o in outputs if o != self.features_output), None)
        for role, name in (("output", self.output), ("features_output", self.features_output)):
            if name is not None and name not in graph.outputs:
                raise ValueError(f"onnx: {graph.path.name} has no output {name!r} ({role}); its outputs: {', '.join(outputs)}")
        if self.output is None or self.output == self.features_output:
            raise ValueError(
                f"onnx: output {self.output!r} cannot be both the logits and the features; name the logits with "
                f"--model-arg output=NAME (outputs: {', '.join(outputs)})"
            )
        rank = 4 if task.dense else 2
        logits = graph.dims(self.output)
        if len(logits) != rank:
            raise ValueError(
                f"onnx: output {self.output!r} is {shape_text(logits)}, not the (batch, classes{', H, W' if task.dense else ''}) "
                f"logits of a {task.name} model"
            )
        if _static(logits[1]) is not None and logits[1] != self.num_classes:
            raise ValueError(
                f"onnx: output {self.output!r} is {shape_text(logits)}: {logits[1]} classes, but the run has {self.num_classes}"
            )
        if self.features_output is not None and len(graph.dims(self.features_output)) != rank:
            raise ValueError(
                f"onnx: features output {self.features_output!r} is {shape_text(graph.dims(self.features_output))}; a "
                f"{task.name} model's features are {'(batch, C, h, w) maps' if task.dense else '(batch, D) vectors'}"
            )
        self.feature_dim = 0
        self.embeddings_unavailable = None
        if self.features_output is None:
            self.embeddings_unavailable = (
                f"the ONNX graph was imported without --features-output, so no output is known to be its features "
                f"(its outputs: {', '.join(outputs)}); import it again with --features-output NAME"
            )
        else:
            self.feature_dim = _static(graph.dims(self.features_output)[1]) or 0  # 0: dynamic, known after a run

    def _input(self, name: str | None) -> str:
        graph = self.graph
        if name is None:
            if len(graph.inputs) != 1:
                raise ValueError(f"onnx: {graph.path.name} has inputs {', '.join(graph.inputs)}; name the image with input=NAME")
            name = next(iter(graph.inputs))
        if name not in graph.inputs:
            raise ValueError(f"onnx: {graph.path.name} has no input {name!r}; its inputs: {', '.join(graph.inputs)}")
        dims = graph.dims(name)
        if len(dims) != 4 or _static(dims[1]) not in (None, 3) or _static(dims[0]) not in (None, 1):
            raise ValueError(
                f"onnx: input {name!r} is {shape_text(dims)}; a graph here takes (batch, 3, H, W) images, batch 1 or dynamic"
            )
        return name

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """(H, W) when the graph's input is static in both, else None: the only size such a graph takes."""
        h, w = (_static(d) for d in self.graph.dims(self.input)[2:])
        return (h, w) if h and w else None

    def check_fits(self, hw: tuple[int, int]) -> None:
        """Refuse, naming the shapes, a graph that does not take (1, 3, H, W) images or gives another class count."""
        fixed = self.input_hw
        if fixed is not None and tuple(hw) != fixed:
            dims = shape_text(self.graph.dims(self.input))
            raise ValueError(
                f"onnx: input {self.input!r} is {dims}, so it cannot take {hw[0]}x{hw[1]} images; "
                f"use --size {fixed[0]} {fixed[1]}"
            )
        out = self._run(torch.zeros(1, 3, *hw), [self.output])[0]
        if out.dim() < 2 or out.shape[1] != self.num_classes:
            raise ValueError(
                f"onnx: output {self.output!r} is {shape_text(list(out.shape))} on a 1x3x{hw[0]}x{hw[1]} image: "
                f"{out.shape[1] if out.dim() > 1 else '?'} classes, but the dataset has {self.num_classes}"
            )

    def _run(self, x: Tensor, names: list[str]) -> list[Tensor]:
        """The graph's ``names`` outputs for ``x`` (B, 3, H, W), as float32 tensors on ``x``'s device."""
        fixed = self.input_hw
        if fixed is not None and tuple(x.shape[-2:]) != fixed:
            dims = shape_text(self.graph.dims(self.input))
            raise ValueError(f"onnx: input {self.input!r} is {dims}; got a batch of {shape_text(list(x.shape))}")
        dtype = np.float16 if self.graph.inputs[self.input].type == "tensor(float16)" else np.float32
        array = x.detach().float().contiguous().cpu().numpy().astype(dtype, copy=False)  # NCHW, as exported
        one_at_a_time = _static(self.graph.dims(self.input)[0]) == 1
        parts = [array[i : i + 1] for i in range(len(array))] if one_at_a_time else [array]
        runs = [self.graph.run(names, {self.input: part}) for part in parts]
        return [torch.from_numpy(np.concatenate([r[k] for r in runs])).float().to(x.device) for k in range(len(names))]


class OnnxSegmentation(OnnxAdapter, SegmentationModel):
    """An ONNX segmentation graph under the project's contract: ``"out"`` its logits (upsampled to the input's size
    by the base class if the graph gives them smaller), ``"features"`` its ``features_output`` if one was named."""

    def __init__(self, graph: OnnxGraph, *, num_classes: int, args: dict[str, Any]) -> None:
        SegmentationModel.__init__(self, num_classes=num_classes, in_channels=3)
        self.size_divisor = 1  # the graph takes the sizes it was exported for; no padding it never saw
        self._connect(graph, SegmentationModel.task, args)

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        names = [self.output] + ([self.features_output] if self.features_output else [])
        outs = self._run(x, names)
        return {"out": outs[0], **({"features": outs[1]} if len(outs) > 1 else {})}


class OnnxClassifier(OnnxAdapter, ClassificationModel):
    """An ONNX classification graph under the project's contract. The graph runs whole, so its logits and its
    ``features_output`` come from one run (``logits_and_features``); ``head`` alone cannot be run."""

    def __init__(self, graph: OnnxGraph, *, num_classes: int, args: dict[str, Any]) -> None:
        ClassificationModel.__init__(self, num_classes=num_classes, in_channels=3)
        self._connect(graph, ClassificationModel.task, args)

    def forward(self, x: Tensor) -> Tensor:
        return self._run(x, [self.output])[0]  # (B, K)

    def logits_and_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.embeddings_unavailable:
            raise EmbeddingsUnavailableError(self.embeddings_unavailable)
        logits, features = self._run(x, [self.output, self.features_output])
        return logits, features  # (B, K), (B, D)

    def features(self, x: Tensor) -> Tensor:
        return self.logits_and_features(x)[1]

    def head(self, f: Tensor) -> Tensor:
        raise NotImplementedError("an ONNX graph runs whole: its head cannot be run on an embedding; use logits_and_features(x)")


class OnnxSource(ModelSource):
    prefix = "onnx"
    package = "onnxruntime"
    pip = "onnxruntime"
    naming = (
        "onnx:segmentation or onnx:classification: an .onnx graph brought in with python -m core.train.import_run (never trained)"
    )
    untrainable = UNTRAINABLE
    features_from_output = True

    def names(self, task: type[Task] | None = None) -> list[str]:
        return sorted(t.name for t in all_tasks() if task is None or t is task)

    def task(self, name: str) -> type[Task]:
        self.check_name(name)
        return task_type(name)

    def arguments(self, name: str, args: dict[str, Any], *, num_classes: int) -> dict[str, Any]:
        self.check_name(name)
        unknown = sorted(set(args) - set(ARGS) - {"num_classes"})
        if unknown:
            raise ValueError(f"onnx: unknown argument(s) {unknown}; valid: {', '.join(ARGS)}")
        recorded = {key: args.get(key) for key in ARGS}
        recorded["file"] = relative_file(args.get("file", ONNX_FILE))
        return json_args("onnx", {**recorded, "num_classes": num_classes})

    def kept_file(self, args: dict[str, Any]) -> str | None:
        return relative_file(args.get("file", ONNX_FILE))

    def build(self, name: str, args: dict[str, Any], *, pretrained: bool = False, folder: Path | None = None) -> nn.Module:
        """The adapter on the run directory's graph (``folder``/``args["file"]``, never a file outside ``folder``)."""
        task = self.task(name)
        if folder is None:
            raise ValueError("onnx: a graph is read from its run directory (Run.build_model), so build needs the run's folder")
        unknown = sorted(set(args) - set(ARGS) - {"num_classes"})
        if unknown:
            raise ValueError(f"onnx: unknown argument(s) {unknown}; valid: {', '.join(ARGS)}")
        graph = OnnxGraph(inside(Path(folder), args.get("file")))
        adapter = OnnxSegmentation if task.dense else OnnxClassifier
        return adapter(graph, num_classes=int(args["num_classes"]), args=args)

    def read_checkpoint(self, path: Path) -> tuple[str, dict[str, Any], dict[str, Tensor]] | None:
        """An ``.onnx`` file: its task from the rank of its first output (4: segmentation, 2: classification), its
        input and that output by name, and no tensors (the graph is the weights; import_run keeps the file)."""
        if not (path.is_file() and path.suffix.lower() == ".onnx"):
            return None
        graph = OnnxGraph(path)
        if len(graph.inputs) != 1:
            raise ValueError(
                f"onnx: {path.name} has inputs {', '.join(graph.inputs)}; this project feeds a graph one image input"
            )
        output = next(iter(graph.outputs))
        dims = graph.dims(output)
        tasks = {4 if t.dense else 2: t for t in all_tasks()}
        if len(dims) not in tasks:
            raise ValueError(
                f"onnx: the first output of {path.name}, {output!r}, is {shape_text(dims)}: "
                "neither (B, K, H, W) nor (B, K) logits"
            )
        args = {"file": ONNX_FILE, "input": next(iter(graph.inputs)), "output": output, "features_output": None}
        return tasks[len(dims)].name, args, {}
