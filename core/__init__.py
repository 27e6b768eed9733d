"""Vision Explorer core: train, evaluate and serve segmentation and classification models."""

__version__ = "0.1.0"
