"""Uploaded images: decoded safely (size limits, every mode), downscaled, predicted once per content."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from core import visualize as V
from core.data.images import too_large_message
from core.explorer.cache import UPLOADS
from core.explorer.legends import present_classes
from core.explorer.predictions import Member, get_predictor, member_key
from core.explorer.validation import run_failure
from core.inference import ClassificationPrediction, SegmentationPrediction, to_rgb_array
from core.visualize import fit_within

MAX_UPLOAD_SIDE = 1024  # uploads are downscaled to this longest side before inference (app: --max-upload-side)
MAX_UPLOAD_PIXELS = 64_000_000  # larger files are refused before decoding (decompression bombs)
SWAPPED = {5, 6, 7, 8}  # EXIF orientations that turn the image by 90 degrees: width and height swap


@dataclass
class Upload:
    """An uploaded image as analysed ((H, W, 3) uint8, downscaled) and the file's own (width, height)."""

    image: np.ndarray
    original: tuple[int, int]

    @property
    def size_text(self) -> str:
        """e.g. "4000×3000 px, analysed at 1024×768 px", or "640×480 px" when it was not downscaled."""
        h, w = self.image.shape[:2]
        if (w, h) == tuple(self.original):
            return f"{w}×{h} px"
        return f"{self.original[0]}×{self.original[1]} px, analysed at {w}×{h} px"


def check_upload_side(value: Any) -> int:
    """``value`` as a longest side in pixels for uploads; anything but a positive whole number is a ``ValueError``."""
    try:
        side = int(str(value).strip())
    except ValueError:
        raise ValueError(f"the upload limit must be a whole number of pixels (e.g. {MAX_UPLOAD_SIDE}), got {value!r}") from None
    if side <= 0:
        raise ValueError(f"the upload limit must be a positive number of pixels (e.g. {MAX_UPLOAD_SIDE}), got {side}")
    return side


def read_image(source: str | Path | bytes, *, max_side: int = MAX_UPLOAD_SIDE) -> np.ndarray:
    """An uploaded file as (H, W, 3) uint8 RGB: EXIF orientation applied, downscaled to ``max_side``.

    Anything that is not a readable image is a ``ValueError`` with a message for the user.
    """
    return read_upload(source, max_side=max_side).image


def read_upload(source: str | Path | bytes, *, max_side: int = MAX_UPLOAD_SIDE) -> Upload:
    """``read_image``, with the file's own size (after EXIF orientation) to say what was downscaled."""
    max_side = check_upload_side(max_side)
    try:
        fh = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as e:
        raise ValueError(f"cannot read the uploaded file ({e.strerror})") from e
    with fh:
        try:
            with Image.open(fh) as im:
                if im.width * im.height > MAX_UPLOAD_PIXELS:
                    raise ValueError(too_large_message(size=(im.width, im.height), limit_pixels=MAX_UPLOAD_PIXELS))
                turned = im.getexif().get(0x0112) in SWAPPED
                original = (im.height, im.width) if turned else (im.width, im.height)
                im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale when much larger
                array = to_rgb_array(im)
        except Image.DecompressionBombError as e:
            raise ValueError(too_large_message(e, limit_pixels=MAX_UPLOAD_PIXELS)) from e
        except UnidentifiedImageError as e:
            raise ValueError("this file is not an image that can be read (supported: JPEG, PNG, WebP, BMP, GIF, TIFF)") from e
        except (OSError, SyntaxError) as e:
            raise ValueError(f"the image file is damaged or truncated ({e})") from e
    return Upload(fit_within(array, max_side), original)


def predict_image(members: Sequence[Member], image: np.ndarray) -> SegmentationPrediction | ClassificationPrediction:
    """Prediction of a run (or ensemble) on one image, cached by the image's content."""
    digest = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest() + str(image.shape)
    key = (member_key(members), digest)
    # kept: the label map and its entropy (segmentation), not K float32 probability maps
    return UPLOADS.get_or_create(key, lambda: _compact(get_predictor(members).predict([image], probs=False, entropy=True)[0]))


def _compact(pred: SegmentationPrediction | ClassificationPrediction) -> SegmentationPrediction | ClassificationPrediction:
    """What the upload views need of a prediction: small-int labels and float32 entropy (segmentation)."""
    if isinstance(pred, SegmentationPrediction):
        labels = pred.labels.astype(np.uint8 if pred.labels.max(initial=0) < 256 else np.int16)
        return SegmentationPrediction(labels, None, None, pred.entropy().astype(np.float32))
    return pred


def analyze(
    renders,
    image: np.ndarray | Upload,
    members: Sequence[tuple[str, Member]],
    *,
    opacity: float = 0.55,
):
    """Each named run on an uploaded image: overlay and uncertainty (entropy) map with the predicted
    classes, or the top-5 classes. A run that fails shows the reason in its own panel and row. Returns a
    ``core.explorer.compare.Comparison``. An ``Upload`` that was downscaled says so, with both sizes."""
    from core.explorer.compare import Comparison, Panel, display

    upload = image if isinstance(image, Upload) else Upload(image, (image.shape[1], image.shape[0]))
    image = upload.image
    digest = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()
    opacity = round(float(np.clip(opacity, 0.0, 1.0)), 3)
    size = upload.size_text
    panels = [Panel(renders.path(("upload", digest), lambda: display(image)), f"your image · {size}")]
    rows, topk, present = [], [], set()
    for name, member in members:
        run, epoch = member
        try:
            pred = predict_image([member], image)
        except Exception as e:  # noqa: BLE001  (one faulty run fails in its own panel; the others render)
            reason = run_failure(name, e)
            path = renders.path(("upload-failed", digest), lambda: display(V.dim(image, 0.75)))
            panels.append(Panel(path, f"⚠ {name} failed: {reason}"[:300]))
            rows.append({"run": name, "epoch": epoch, "error": reason})
            continue
        if run.task.dense:
            seg_panels, row = _segmentation_panels(renders, image, digest, name, member, pred, opacity)
            panels += seg_panels
            present.update(present_classes(None, [pred.labels], run.num_classes, run.ignore_index))
            rows.append(row)
        else:
            top = [(run.classes[c], p) for c, p in pred.topk(5)]
            topk.append((name, top))
            rows.append({"run": name, "epoch": epoch, "top5": [[c, p] for c, p in top]})
    scores = {"width": int(image.shape[1]), "height": int(image.shape[0]), "runs": rows}
    scores.update(original_width=int(upload.original[0]), original_height=int(upload.original[1]))
    return Comparison(panels, scores, f"{size} · {len(members)} runs", topk, sorted(present))


def _segmentation_panels(renders, image: np.ndarray, digest: str, name: str, member: Member, pred, opacity: float):
    """A segmentation run's overlay and uncertainty map on the upload, and its row of results."""
    from core.evaluation.per_image import class_presence
    from core.explorer.compare import Panel, display

    run, epoch = member
    key = (member_key([member]), digest)
    overlay = renders.path(
        ("upload-pred", opacity) + key, lambda: display(V.overlay(image, pred.labels, run.palette, opacity=opacity))
    )
    entropy = pred.entropy()
    most = float(np.log(run.num_classes))
    uncertainty = renders.path(("upload-entropy",) + key, lambda: display(V.entropy_map(entropy, run.num_classes)))
    panels = [
        Panel(overlay, f"{name} @ {epoch}"),
        Panel(uncertainty, f"{name}: uncertainty, mean {float(entropy.mean()):.2f} of at most {most:.2f} nats"),
    ]
    present = class_presence(pred.labels, None, run.num_classes, run.ignore_index).predicted
    row = {
        "run": name,
        "epoch": epoch,
        "classes": [run.classes[c] for c in present],
        "mean_entropy": float(entropy.mean()),
        "max_entropy": most,
    }
    return panels, row
