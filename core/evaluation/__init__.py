"""Measures: pure functions of label maps, probabilities and confusion counts.

``metrics`` scores a split from one confusion matrix (dataset mIoU, accuracy, top-k); ``per_image`` scores
one image; ``boundary``, ``calibration``, ``significance`` and ``agreement`` answer what region IoU leaves
open; ``losses`` holds the training losses that aim at these measures (Lovász-softmax, OHEM). Nothing here
reads runs, datasets or models.
"""
