"""``synthstreets``: procedurally rendered street scenes with CamVid's classes, any size, no download.

``render`` lays out a scene (sky, buildings, road, sidewalk, trees, poles, signs, fences, cars,
pedestrians, cyclists) from (seed, index); ``shapes`` draws its objects; ``dataset`` registers it.
"""

from core.data.synthstreets.dataset import SynthStreets, synthstreets

__all__ = ["SynthStreets", "synthstreets"]
