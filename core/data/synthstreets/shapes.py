"""Drawing helpers for the synthstreets renderer (see ``synthstreets_render``).

Geometry lives in metres in a pinhole street frame (x right, y up, z forward from the camera) or
in normalised image coordinates (u right, v down, both 0..1). Pixels appear only inside
``Canvas``, so a scene keeps its layout at every resolution. Every helper draws the RGB image and
the label image with the same shapes; details that CamVid labels as their parent (windows, lane
marks, car glass) are drawn into the image only.

Helpers take a ``Sampler`` and must consume the same random numbers whatever the output size:
never branch on pixel sizes before sampling.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Point = tuple[float, float]

# Label ids, in CamVid's order (kept in sync with synthstreets_render.CLASSES).
SKY, BUILDING, POLE, ROAD, SIDEWALK, TREE, SIGN, FENCE, CAR, PED, BIKE, VOID = range(12)

# Scenes are composed for a 4:3 frame; u-units per metre are this fraction of v-units per metre.
ASPECT = 0.75


class Sampler:
    """Buffered uniform draws from a numpy Generator.

    A scene makes several hundred scalar draws; pulling them from a pre-filled buffer is about
    five times cheaper than one Generator call each, and stays deterministic.
    """

    def __init__(self, rng: np.random.Generator, chunk: int = 2048) -> None:
        self.rng = rng
        self._chunk = chunk
        self._buf: list[float] = []
        self._i = 0

    def _next(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self.rng.random(self._chunk).tolist()
            self._i = 0
        x = self._buf[self._i]
        self._i += 1
        return x

    def u(self, lo: float = 0.0, hi: float = 1.0) -> float:
        i = self._i  # inlined _next: this is the hottest call in the renderer
        if i >= len(self._buf):
            self._buf = self.rng.random(self._chunk).tolist()
            i = 0
        self._i = i + 1
        return lo + (hi - lo) * self._buf[i]

    def i(self, lo: int, hi: int) -> int:
        """Integer in [lo, hi)."""
        return min(hi - 1, lo + int((hi - lo) * self._next()))

    def p(self, prob: float) -> bool:
        return self._next() < prob

    def pick(self, seq: Sequence):
        return seq[self.i(0, len(seq))]

    def sign(self) -> int:
        return 1 if self._next() < 0.5 else -1


def hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (int(r * 255), int(g * 255), int(b * 255))


def shade(rgb: RGB, k: float) -> RGB:
    return (min(255, int(rgb[0] * k)), min(255, int(rgb[1] * k)), min(255, int(rgb[2] * k)))


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return (int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t), int(a[2] + (b[2] - a[2]) * t))


def grey(v: float, tint: float = 0.0) -> RGB:
    """A grey of level v (0..255); tint > 0 warms it, < 0 cools it, as real greys are never neutral."""
    return (int(min(255, v * (1 + tint))), int(v), int(min(255, v * (1 - tint))))


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at height ``hc`` over flat ground, looking along +z."""

    vx: float  # vanishing point, normalised
    vh: float  # horizon row, normalised
    f: float  # focal length in image heights
    hc: float  # camera height in metres

    def uv(self, x: float, y: float, z: float) -> Point:
        return (self.vx + ASPECT * self.f * x / z, self.vh + self.f * (self.hc - y) / z)

    def scale(self, z: float) -> float:
        """Image heights per metre at depth z (a metre across spans the same pixel count at 4:3)."""
        return self.f / z


class Canvas:
    """The RGB image and label image, drawn together through normalised coordinates."""

    def __init__(self, background: Image.Image, fill_class: int) -> None:
        self.w, self.h = background.size
        self.img = background
        self.mask = Image.new("L", (self.w, self.h), fill_class)
        self._di = ImageDraw.Draw(self.img)
        self._dm = ImageDraw.Draw(self.mask)

    def px(self, pts: Sequence[Point]) -> list[Point]:
        # PIL puts pixel centres on integers, so shift by half a pixel to keep sizes consistent.
        w, h = self.w, self.h
        return [(u * w - 0.5, v * h - 0.5) for u, v in pts]

    def poly(self, pts: Sequence[Point], rgb: RGB, cls: int | None = None, outline: RGB | None = None) -> None:
        xy = self.px(pts)
        self._di.polygon(xy, fill=rgb, outline=outline)
        if cls is not None:
            self._dm.polygon(xy, fill=cls)

    def ellipse(self, cu: float, cv: float, ru: float, rv: float, rgb: RGB, cls: int | None = None, width: float = 0.0) -> None:
        """Filled ellipse, or an outline ``width`` image-heights thick (at least one pixel)."""
        w, h = self.w, self.h
        x0, x1 = (cu - ru) * w - 0.5, (cu + ru) * w - 0.5
        y0, y1 = (cv - rv) * h - 0.5, (cv + rv) * h - 0.5
        if x1 - x0 < 1.0:
            x0, x1 = (x0 + x1) / 2 - 0.5, (x0 + x1) / 2 + 0.5
        if y1 - y0 < 1.0:
            y0, y1 = (y0 + y1) / 2 - 0.5, (y0 + y1) / 2 + 0.5
        box = (x0, y0, x1, y1)
        if width > 0:
            px = max(1, int(round(width * h)))
            self._di.ellipse(box, outline=rgb, width=px)
            if cls is not None:
                self._dm.ellipse(box, outline=cls, width=px)
        else:
            self._di.ellipse(box, fill=rgb)
            if cls is not None:
                self._dm.ellipse(box, fill=cls)

    def line(self, pts: Sequence[Point], width: float, rgb: RGB, cls: int | None = None) -> None:
        """Polyline ``width`` image-heights thick; thin things stay at least one pixel wide."""
        px = max(1, int(round(width * self.h)))
        xy = self.px(pts)
        self._di.line(xy, fill=rgb, width=px)
        if cls is not None:
            self._dm.line(xy, fill=cls, width=px)


def quad_in(q: Sequence[Point], a0: float, a1: float, b0: float, b1: float) -> list[Point]:
    """Sub-quad of q = (bottom-left, bottom-right, top-right, top-left) at fractions a (across), b (up).

    Bilinear in image space, which is close enough to perspective for windows and lights.
    """
    (x00, y00), (x10, y10), (x11, y11), (x01, y01) = q

    def at(a: float, b: float) -> Point:
        return (
            (x00 * (1 - a) + x10 * a) * (1 - b) + (x01 * (1 - a) + x11 * a) * b,
            (y00 * (1 - a) + y10 * a) * (1 - b) + (y01 * (1 - a) + y11 * a) * b,
        )

    return [at(a0, b0), at(a1, b0), at(a1, b1), at(a0, b1)]


def box_faces(cam: Camera, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> dict[str, list[Point]]:
    """Camera-facing faces of an axis-aligned box, each as (bottom-left, bottom-right, top-right, top-left)."""
    P = cam.uv
    faces = {"front": [P(x0, y0, z0), P(x1, y0, z0), P(x1, y1, z0), P(x0, y1, z0)]}
    if x1 < 0:
        faces["side"] = [P(x1, y0, z0), P(x1, y0, z1), P(x1, y1, z1), P(x1, y1, z0)]
    elif x0 > 0:
        faces["side"] = [P(x0, y0, z1), P(x0, y0, z0), P(x0, y1, z0), P(x0, y1, z1)]
    if y1 < cam.hc:
        faces["top"] = [P(x0, y1, z0), P(x1, y1, z0), P(x1, y1, z1), P(x0, y1, z1)]
    return faces


# ---------------------------------------------------------------------------------------------
# Vehicles


CAR_COLOURS: tuple[RGB, ...] = (
    (200, 200, 205),
    (160, 162, 166),
    (110, 112, 118),
    (40, 40, 45),
    (20, 20, 24),
    (235, 235, 235),
    (150, 20, 25),
    (30, 50, 120),
    (20, 70, 60),
    (170, 150, 110),
    (90, 30, 40),
    (60, 90, 150),
    (210, 180, 40),
    (200, 90, 20),
    (120, 120, 80),
)


def _wheel(cv: Canvas, cam: Camera, x: float, z: float, r: float, rgb: RGB) -> None:
    """A wheel on the car side plane x = const: an ellipse squeezed by perspective."""
    ua = cam.uv(x, r, z - r)[0]
    ub = cam.uv(x, r, z + r)[0]
    cu, cvv = cam.uv(x, r, z)
    rv = r * cam.scale(z)
    ru = abs(ua - ub) / 2
    cv.ellipse((ua + ub) / 2, cvv, ru, rv, rgb, CAR)
    cv.ellipse((ua + ub) / 2, cvv, ru * 0.5, rv * 0.5, (95, 95, 100))


def vehicle_length(s: Sampler, kind: int) -> float:
    """Sampled by the layout, which needs it to space parked cars and traffic."""
    return s.u(3.9, 4.8) if kind == 0 else (s.u(4.4, 5.4) if kind == 1 else s.u(9.0, 12.0))


def draw_vehicle(cv: Canvas, cam: Camera, s: Sampler, xc: float, z0: float, kind: int, length: float, oncoming: bool) -> None:
    """A car (kind 0), van (1) or bus/lorry (2) as projected boxes, nearest face at depth z0."""
    colour = s.pick(CAR_COLOURS)
    colour = shade(colour, s.u(0.85, 1.1))
    if kind == 0:
        w, yb, yt, ytop = s.u(1.7, 1.9), 0.2, s.u(0.8, 0.95), s.u(1.35, 1.5)
    elif kind == 1:
        w, yb, yt, ytop = s.u(1.85, 2.05), 0.25, s.u(1.7, 2.3), 0.0
    else:
        w, yb, yt, ytop = s.u(2.4, 2.55), 0.35, s.u(2.9, 3.4), 0.0
        colour = s.pick(((200, 30, 30), (230, 230, 225), (40, 110, 180), (230, 190, 40), colour))
    glass = grey(s.u(25, 70), -0.1)
    x0, x1, z1 = xc - w / 2, xc + w / 2, z0 + length
    r = 0.32 if kind < 2 else 0.5

    # Contact shadow first, so the body covers most of it: a dark, road-labelled smudge.
    P = cam.uv
    cv.poly([P(x0 - 0.15, 0, z0 - 0.3), P(x1 + 0.15, 0, z0 - 0.3), P(x1 + 0.1, 0, z1), P(x0 - 0.1, 0, z1)], grey(s.u(20, 40)))
    faces = box_faces(cam, x0, x1, yb, yt, z0, z1)
    # Wheels under the near face and along the visible side, drawn before the body overlaps them.
    tyre = (22, 22, 24)
    for xa, xb in ((x0 + 0.1, x0 + 0.35), (x1 - 0.35, x1 - 0.1)):
        zw = z0 + 0.3
        cv.poly([P(xa, 0, zw), P(xb, 0, zw), P(xb, yb + 0.1, zw), P(xa, yb + 0.1, zw)], tyre, CAR)
    if "side" in faces:
        xs = x1 if x1 < 0 else x0
        for za in (z0 + 0.75 * r / 0.32, z1 - 0.8 * r / 0.32):
            _wheel(cv, cam, xs, za, r, tyre)
    side_k, top_k = s.u(0.6, 0.8), s.u(1.05, 1.2)
    if "top" in faces:
        cv.poly(faces["top"], shade(colour, top_k), CAR)
    if "side" in faces:
        side = faces["side"]
        cv.poly(side, shade(colour, side_k), CAR)
        if kind > 0:  # vans and buses have their windows in the box itself
            cv.poly(quad_in(side, 0.08 if kind == 2 else 0.55, 0.95, 0.55, 0.85), glass, outline=shade(colour, 0.5))
    front = faces["front"]
    cv.poly(front, colour, CAR)
    if kind > 0:
        cv.poly(quad_in(front, 0.08, 0.92, 0.55, 0.9), glass, outline=shade(colour, 0.6))
    # Bumper, lights and plate make the near face read as a car rather than a box.
    cv.poly(quad_in(front, 0.0, 1.0, 0.0, 0.14), grey(s.u(25, 60)))
    if front[0][1] - front[3][1] > 0.02:  # skipped where they would be sub-pixel anyway
        light = (255, 250, 220) if oncoming else (200, 25, 25)
        lo, hi = (0.42, 0.5) if kind else (0.62, 0.8)
        cv.poly(quad_in(front, 0.03, 0.2, lo, hi), light)
        cv.poly(quad_in(front, 0.8, 0.97, lo, hi), light)
        cv.poly(quad_in(front, 0.38, 0.62, 0.2, 0.32 if kind else 0.38), (230, 230, 215))
    if kind == 0:
        # Cabin: inset, with sloped windscreens, sitting on the lower body.
        ca, cb = (1.3, 1.1) if oncoming else (0.9, 1.2)
        zb0, zt0, zt1, zb1 = z0 + ca, z0 + ca + 0.5, z1 - cb - 0.55, z1 - cb
        xi0, xi1, xo0, xo1 = x0 + 0.12, x1 - 0.12, x0 + 0.25, x1 - 0.25
        rear = [P(xi0, yt, zb0), P(xi1, yt, zb0), P(xo1, ytop, zt0), P(xo0, ytop, zt0)]
        if ytop < cam.hc:
            roof = [P(xo0, ytop, zt0), P(xo1, ytop, zt0), P(xo1, ytop, zt1), P(xo0, ytop, zt1)]
            cv.poly(roof, shade(colour, top_k), CAR)
        if "side" in faces:
            xs0, xs1 = (xi1, xo1) if x1 < 0 else (xi0, xo0)
            cab = [P(xs0, yt, zb0), P(xs0, yt, zb1), P(xs1, ytop, zt1), P(xs1, ytop, zt0)]
            if x0 > 0:
                cab = [cab[1], cab[0], cab[3], cab[2]]
            cv.poly(cab, shade(colour, side_k), CAR)
            cv.poly(quad_in(cab, 0.1, 0.9, 0.12, 0.85), glass)
            cv.poly(quad_in(cab, 0.48, 0.54, 0.1, 0.9), shade(colour, side_k * 0.9))
        cv.poly(rear, colour, CAR)
        cv.poly(quad_in(rear, 0.08, 0.92, 0.12, 0.88), glass)


# ---------------------------------------------------------------------------------------------
# People


SKIN: tuple[RGB, ...] = ((235, 200, 170), (210, 160, 120), (160, 110, 75), (100, 65, 45), (240, 215, 190))
CLOTHES: tuple[RGB, ...] = (
    (30, 30, 35),
    (50, 50, 60),
    (20, 30, 60),
    (120, 30, 30),
    (200, 200, 195),
    (90, 90, 95),
    (60, 80, 40),
    (150, 120, 80),
    (40, 60, 110),
    (180, 60, 90),
    (220, 170, 40),
    (70, 40, 30),
)


class _Billboard:
    """Maps metres in a vertical plane facing the camera at (x, z) to normalised image points."""

    def __init__(self, cam: Camera, x: float, z: float) -> None:
        self.u0, self.v0 = cam.uv(x, 0.0, z)
        self.s = cam.scale(z)
        self.su = ASPECT * self.s

    def __call__(self, a: float, b: float) -> Point:
        return (self.u0 + a * self.su, self.v0 - b * self.s)


def draw_pedestrian(cv: Canvas, cam: Camera, s: Sampler, x: float, z: float) -> None:
    """A walking figure whose thin limbs and varied clothes make it hard to segment."""
    B = _Billboard(cam, x, z)
    sc = B.s
    h = s.u(1.55, 1.9) if s.p(0.9) else s.u(1.0, 1.35)
    skin, top, legs = s.pick(SKIN), s.pick(CLOTHES), s.pick(CLOTHES[:9])
    profile = s.p(0.5)  # side view shows the stride; front/back view shows two parallel legs
    phase = s.u(-1, 1)
    stride = 0.28 * phase if profile else 0.0
    spread = 0.05 if profile else 0.09
    hip, sh = 0.52 * h, 0.81 * h
    coat = s.p(0.3)
    for k in (-1, 1):
        foot = k * (spread + stride)
        cv.line([B(k * spread * 0.7, hip), B(foot, 0.02)], 0.13 * sc, shade(legs, 0.85 if k < 0 else 1), PED)
        cv.line([B(foot, 0.03), B(foot + (0.08 if profile else 0), 0.03)], 0.08 * sc, (25, 22, 20), PED)
    half_sh, half_hip = (0.13, 0.11) if profile else (0.21, 0.17)
    bottom = 0.4 * h if coat else hip - 0.03
    cv.poly([B(-half_hip, bottom), B(half_hip, bottom), B(half_sh, sh), B(-half_sh, sh)], top, PED)
    swing = 0.22 * phase if profile else 0.0
    for k in (-1, 1):
        sx = k * (half_sh - 0.03)
        elbow = B(sx - k * swing * 0.5 + (0 if profile else k * 0.03), 0.64 * h)
        hand = B(sx - k * swing + (0 if profile else k * 0.05), 0.46 * h)
        cv.line([B(sx, sh - 0.03), elbow, hand], 0.085 * sc, shade(top, 0.9), PED)
        cv.ellipse(hand[0], hand[1], 0.04 * B.su, 0.04 * sc, skin, PED)
    cv.line([B(0, sh - 0.02), B(0, sh + 0.08)], 0.09 * sc, skin, PED)
    hc, hu = h - 0.11, B(0, h - 0.11)
    cv.ellipse(hu[0], hu[1], 0.085 * B.su, 0.11 * sc, skin, PED)
    hair = s.pick(((20, 15, 10), (60, 40, 25), (120, 90, 50), (150, 150, 150), (200, 170, 110)))
    hu = B(0, hc + 0.04)
    cv.ellipse(hu[0], hu[1], 0.088 * B.su, 0.075 * sc, hair, PED)
    if s.p(0.3):  # a bag: extends the silhouette the way real pedestrians do
        bx = s.pick((-1, 1)) * (half_hip + 0.08)
        cv.poly(
            [B(bx - 0.12, 0.45 * h), B(bx + 0.12, 0.45 * h), B(bx + 0.1, 0.62 * h), B(bx - 0.1, 0.62 * h)], s.pick(CLOTHES), PED
        )


def draw_bicyclist(cv: Canvas, cam: Camera, s: Sampler, x: float, z: float) -> None:
    """Rider plus bike: spoked-looking wheel rings and a thin frame, all labelled Bicyclist."""
    B = _Billboard(cam, x, z)
    sc = B.s
    k = s.u(0.15, 1.0) * s.sign()  # foreshortening of the bike's long axis (heading)
    frame = s.pick(((20, 20, 20), (180, 20, 20), (30, 60, 150), (200, 200, 200), (30, 120, 60), (220, 180, 30)))
    wheel_c = (25, 25, 25)

    def F(a: float, b: float, lat: float = 0.0) -> Point:
        return B(a * k + lat, b)

    r = 0.34
    for a in (-0.52, 0.53):
        c = F(a, r)
        cv.ellipse(c[0], c[1], r * abs(k) * B.su + 0.5 * 0.04 * sc, r * sc, wheel_c, BIKE, width=0.045 * sc)
    bb, seat, head, hub_r, hub_f = F(-0.05, 0.3), F(-0.22, 0.88), F(0.4, 0.85), F(-0.52, r), F(0.53, r)
    tube = 0.04 * sc
    cv.line([hub_r, bb, head], tube, frame, BIKE)
    cv.line([hub_r, seat, bb], tube, frame, BIKE)
    cv.line([seat, head, hub_f], tube, frame, BIKE)
    bar = F(0.38, 1.0)
    cv.line([head, bar], tube, (30, 30, 30), BIKE)
    shirt, trousers, skin = s.pick(CLOTHES), s.pick(CLOTHES[:9]), s.pick(SKIN)
    crank = s.u(0, 2 * math.pi)
    width = 0.18 + 0.2 * (1 - abs(k))  # a rider seen from behind shows shoulders, from the side not
    hip, shoulder = F(-0.2, 0.98), F(0.12, 1.5)
    for sgn in (-1, 1):
        angle = crank + (sgn > 0) * math.pi
        pedal = F(-0.05 + 0.17 * math.cos(angle), 0.3 + 0.17 * math.sin(angle), sgn * 0.08 * (1 - abs(k)))
        knee = F(0.18, 0.62 + 0.1 * sgn, sgn * 0.1 * (1 - abs(k)))
        cv.line([hip, knee, pedal], 0.12 * sc, shade(trousers, 1.0 if sgn > 0 else 0.8), BIKE)
    cv.line([hip, shoulder], width * sc, shirt, BIKE)
    cv.line([shoulder, bar], 0.08 * sc, shade(shirt, 0.85), BIKE)
    hu = F(0.2, 1.68)
    cv.ellipse(hu[0], hu[1], 0.09 * B.su, 0.11 * sc, skin, BIKE)
    if s.p(0.5):  # helmet
        hu = F(0.2, 1.74)
        helmet = s.pick(((240, 240, 240), (30, 30, 30), (200, 40, 40), (40, 90, 200)))
        cv.ellipse(hu[0], hu[1], 0.12 * B.su, 0.08 * sc, helmet, BIKE)


# ---------------------------------------------------------------------------------------------
# Vegetation, street furniture


def draw_tree(cv: Canvas, cam: Camera, s: Sampler, x: float, z: float, leaf_hue: float) -> None:
    """Trunk plus a crown of overlapping leaf blobs in varied greens, lit from above."""
    B = _Billboard(cam, x, z)
    sc = B.s
    R = s.u(1.3, 3.2)
    trunk_h = s.u(1.8, 3.2)
    squash = s.u(0.8, 1.3)
    cy = trunk_h + R * squash * 0.85
    bark = grey(s.u(50, 100), 0.25)
    cv.line([B(0, 0), B(s.u(-0.2, 0.2), cy)], s.u(0.2, 0.4) * sc, bark, TREE)
    base = (leaf_hue + s.u(-0.04, 0.04), s.u(0.35, 0.75), s.u(0.25, 0.5))
    # Distant crowns get fewer blobs; decided in image heights, so every resolution agrees.
    near = R * sc > 0.03
    for _ in range(11 if near else 5):
        a, b = s.u(-1, 1), s.u(-1, 1)
        rr = R * s.u(0.35, 0.6)
        light = 0.75 + 0.35 * (b + 1) / 2  # upper blobs catch more light
        c = B(a * R * 0.7, cy + b * R * 0.6 * squash)
        leaf = hsv(base[0] + s.u(-0.03, 0.03), base[1], base[2] * light * s.u(0.85, 1.15))
        cv.ellipse(c[0], c[1], rr * B.su, rr * sc * squash, leaf, TREE)
    for _ in range(8 if near else 0):  # speckles inside the crown: texture only
        a, b = s.u(-0.7, 0.7), s.u(-0.7, 0.7)
        rr = R * s.u(0.08, 0.2)
        c = B(a * R * 0.7, cy + b * R * 0.6 * squash)
        cv.ellipse(c[0], c[1], rr * B.su, rr * sc, hsv(base[0], base[1], base[2] * s.u(0.5, 1.4)))


def draw_hedge(cv: Canvas, cam: Camera, s: Sampler, x: float, z0: float, z1: float, leaf_hue: float) -> None:
    """A low bush strip along a plane x = const with a lumpy top edge."""
    h = s.u(0.7, 1.5)
    n = 6
    zs = [z0 + (z1 - z0) * i / (n - 1) for i in range(n)]
    top = [cam.uv(x, h * s.u(0.8, 1.15), z) for z in zs]
    pts = [cam.uv(x, 0, z0)] + top + [cam.uv(x, 0, z1)]
    cv.poly(pts, hsv(leaf_hue + s.u(-0.04, 0.04), s.u(0.4, 0.7), s.u(0.2, 0.4)), TREE)


def draw_pole(cv: Canvas, cam: Camera, s: Sampler, x: float, z: float, side: int, kind: int) -> None:
    """Street lamp (0), utility pole (1) or traffic-light pole (2); side is +1 right of the road."""
    B = _Billboard(cam, x, z)
    sc = B.s
    metal = s.pick((grey(s.u(70, 160)), (40, 60, 45), (30, 30, 35), grey(s.u(150, 200))))
    if kind == 0:
        h = s.u(5.5, 9.0)
        cv.line([B(0, 0), B(0, h)], s.u(0.12, 0.22) * sc, metal, POLE)
        reach = -side * s.u(1.0, 2.2)
        cv.line([B(0, h - 0.3), B(reach * 0.6, h + 0.25), B(reach, h + 0.2)], 0.08 * sc, metal, POLE)
        cv.line([B(reach - 0.25, h + 0.1), B(reach + 0.25, h + 0.1)], 0.16 * sc, grey(s.u(150, 220)), POLE)
    elif kind == 1:
        h = s.u(7.0, 10.0)
        wood = grey(s.u(60, 110), 0.3)
        cv.line([B(0, 0), B(0, h)], s.u(0.22, 0.32) * sc, wood, POLE)
        cv.line([B(-0.8, h - 0.5), B(0.8, h - 0.5)], 0.09 * sc, wood, POLE)
    else:
        h = s.u(3.5, 5.0)
        cv.line([B(0, 0), B(0, h)], s.u(0.13, 0.2) * sc, metal, POLE)
        reach = -side * s.u(0.0, 4.0)
        if abs(reach) > 1.0:
            cv.line([B(0, h - 0.2), B(reach, h - 0.2)], 0.1 * sc, metal, POLE)
        _traffic_light(cv, B, s, reach * 0.9, h - 0.2)


def _traffic_light(cv: Canvas, B: _Billboard, s: Sampler, a: float, top: float) -> None:
    w, h = 0.32, 0.95
    body = s.pick(((25, 25, 25), (40, 45, 40), (180, 160, 30)))
    cv.poly([B(a - w / 2, top - h), B(a + w / 2, top - h), B(a + w / 2, top), B(a - w / 2, top)], body, SIGN)
    lit = s.i(0, 3)
    for i, c in enumerate(((230, 30, 20), (240, 170, 20), (40, 220, 120))):
        cc = c if i == lit else shade(c, 0.3)
        p = B(a, top - 0.17 - i * 0.3)
        cv.ellipse(p[0], p[1], 0.1 * B.su, 0.1 * B.s, cc)


def draw_sign(cv: Canvas, cam: Camera, s: Sampler, x: float, z: float) -> None:
    """A traffic sign on a thin post; the post is Pole, the plate SignSymbol, as in CamVid."""
    B = _Billboard(cam, x, z)
    sc = B.s
    if s.p(0.15):  # a large direction board on two posts
        w, hb, h = s.u(1.8, 3.5), s.u(1.0, 1.8), s.u(1.5, 2.5)
        col = s.pick(((20, 110, 60), (30, 70, 170), (235, 235, 235), (230, 190, 30)))
        for a in (-0.35 * w, 0.35 * w):
            cv.line([B(a, 0), B(a, h + hb * 0.5)], 0.08 * sc, grey(s.u(90, 170)), POLE)
        q = [B(-w / 2, h), B(w / 2, h), B(w / 2, h + hb), B(-w / 2, h + hb)]
        cv.poly(q, col, SIGN, outline=(240, 240, 240))
        ink = (20, 20, 20) if col[0] > 200 else (240, 240, 240)
        for y0 in (0.15, 0.45, 0.72):
            cv.poly(quad_in(q, 0.1, s.u(0.4, 0.9), y0, y0 + 0.12), ink)
        return
    h = s.u(2.0, 3.0)
    size = s.u(0.6, 1.2)
    turn = s.u(0.3, 1.0)  # plates not facing the camera look narrower
    cv.line([B(0, 0), B(0, h + size * 0.3)], s.u(0.06, 0.1) * sc, grey(s.u(90, 170)), POLE)
    n_plates = 1 if s.p(0.6) else 2
    for i in range(n_plates):
        kind = s.i(0, 5)
        cy = h + size / 2 - i * size * 1.05
        c = B(0, cy)
        ru, rv = size / 2 * turn * B.su, size / 2 * sc
        if kind == 0:  # prohibition: red ring on white
            cv.ellipse(c[0], c[1], ru, rv, (200, 30, 30), SIGN)
            cv.ellipse(c[0], c[1], ru * 0.75, rv * 0.75, (235, 235, 235))
        elif kind == 1:  # mandatory: blue disc with a white arrow
            cv.ellipse(c[0], c[1], ru, rv, (30, 70, 170), SIGN)
            cv.line([B(0, cy - size * 0.25), B(0, cy + size * 0.25)], size * 0.08 * sc, (240, 240, 240))
        elif kind == 2:  # warning: triangle
            p = [B(-size / 2 * turn, cy - size * 0.4), B(size / 2 * turn, cy - size * 0.4), B(0, cy + size * 0.5)]
            cv.poly(p, (200, 30, 30), SIGN)
            cv.poly(quad_in([p[0], p[1], p[2], p[2]], 0.2, 0.8, 0.15, 0.6), (240, 230, 200))
        elif kind == 3:  # information: rectangle with "text"
            col = s.pick(((30, 70, 170), (20, 110, 60), (235, 235, 235)))
            q = [
                B(-size * 0.6 * turn, cy - size * 0.4),
                B(size * 0.6 * turn, cy - size * 0.4),
                B(size * 0.6 * turn, cy + size * 0.4),
                B(-size * 0.6 * turn, cy + size * 0.4),
            ]
            cv.poly(q, col, SIGN)
            ink = (20, 20, 20) if col[0] > 200 else (240, 240, 240)
            cv.poly(quad_in(q, 0.15, 0.85, 0.55, 0.7), ink)
            cv.poly(quad_in(q, 0.15, 0.6, 0.25, 0.4), ink)
        else:  # priority: yellow diamond
            half = size / 2
            cv.poly([B(0, cy - half), B(half * turn, cy), B(0, cy + half), B(-half * turn, cy)], (230, 190, 30), SIGN)


def draw_fence(cv: Canvas, cam: Camera, s: Sampler, x: float, z0: float, z1: float, kind: int, rgb: RGB) -> None:
    """Railing (0: posts, rails and balusters you can see through) or solid plank fence (1)."""
    P = cam.uv
    h = s.u(0.9, 1.3) if kind == 0 else s.u(1.3, 2.2)
    sc = cam.scale(z0)
    if kind == 1:
        q = [P(x, 0, z0), P(x, 0, z1), P(x, h, z1), P(x, h, z0)]
        cv.poly(q, rgb, FENCE)
        for t in np.linspace(0.1, 0.9, 5).tolist():  # plank joints, texture only
            cv.poly(quad_in(q, t, t + 0.015, 0.0, 1.0), shade(rgb, 0.6))
        return
    for y, w in ((h, 0.06), (h * 0.15, 0.04)):
        cv.line([P(x, y, z0), P(x, y, z1)], w * sc, rgb, FENCE)
    spacing = 0.25
    # Balusters as far as they stay resolvable (in image heights, not pixels, so every resolution
    # gets the same scene); beyond that a dense fence reads as a solid panel.
    zs = z0
    while zs < z1:
        gap = abs(P(x, 0, zs)[0] - P(x, 0, zs + spacing)[0])
        if gap < 0.007:
            cv.poly([P(x, 0.15 * h, zs), P(x, 0.15 * h, z1), P(x, h, z1), P(x, h, zs)], shade(rgb, 0.9), FENCE)
            break
        cv.line([P(x, 0.1, zs), P(x, h, zs)], 0.03 * cam.scale(zs), rgb, FENCE)
        zs += spacing


def draw_clutter(cv: Canvas, cam: Camera, s: Sampler, x: float, z: float) -> None:
    """Bins, bollards, kiosks, skips: things CamVid leaves void."""
    B = _Billboard(cam, x, z)
    kind = s.i(0, 4)
    c = s.pick(((30, 80, 40), (60, 60, 65), (140, 110, 70), (30, 50, 100), (170, 170, 160), (120, 40, 30)))
    if kind == 0:  # bollards in a row
        for k in range(s.i(2, 6)):
            cv.line([B(k * 1.2, 0), B(k * 1.2, 0.9)], 0.12 * B.s, c, VOID)
        return
    big = kind == 3  # kiosk or skip
    w, h = (s.u(1.5, 3.0), s.u(1.2, 2.6)) if big else (s.u(0.4, 1.2), s.u(0.6, 1.3))
    q = [B(-w / 2, 0), B(w / 2, 0), B(w / 2 * 0.9, h), B(-w / 2 * 0.9, h)]
    cv.poly(q, c, VOID)
    cv.poly(quad_in(q, 0.0, 1.0, 0.85, 1.0), shade(c, 0.6))
    if big:
        cv.poly(quad_in(q, 0.1, 0.9, 0.35, 0.75), grey(s.u(30, 90), -0.1))
    else:
        cv.poly(quad_in(q, 0.1, 0.9, 0.5, 0.58), shade(c, 1.3))


# ---------------------------------------------------------------------------------------------
# Buildings


def draw_wall(
    cv: Canvas, cam: Camera, s: Sampler, a: Point, b: Point, h: float, colour: RGB, style: int, windows: bool = True
) -> None:
    """A building wall on the vertical plane through ground points a = (x, z) and b, h metres tall.

    Storeys of framed windows (image only: CamVid labels windows as Building), a shop floor with
    big windows and now and then a shop sign (SignSymbol). Windows are projected in one numpy
    batch; those too small to see are skipped after sampling, so layouts match across sizes.
    """
    (xa, za), (xb, zb) = a, b
    P = cam.uv
    wall = [P(xa, 0, za), P(xb, 0, zb), P(xb, h, zb), P(xa, h, za)]
    cv.poly(wall, colour, BUILDING)
    if not windows:
        return
    length = math.hypot(xb - xa, zb - za)
    ground_h, storey = s.u(3.0, 4.2), s.u(2.8, 3.5)
    glassy = style == 3
    bay = s.u(1.6, 3.0) if glassy else s.u(1.8, 3.4)
    wf, hf = (s.u(0.75, 0.92), s.u(0.7, 0.9)) if glassy else (s.u(0.4, 0.7), s.u(0.45, 0.7))
    glass = [
        grey(s.u(20, 70), -0.15),
        grey(s.u(90, 170), -0.2),
        hsv(s.u(0.1, 0.15), 0.4, s.u(0.6, 0.9)),
        hsv(s.u(0.55, 0.6), s.u(0.2, 0.4), s.u(0.35, 0.7)),
    ]
    frame = shade(colour, s.u(0.5, 1.3))
    shops = s.p(0.75)
    n_bays, n_floors = int((length - 0.4) / bay), int((h - ground_h - 0.5) / storey)
    # Walls whose windows would be under ~1 pixel at 240x180 stay plain; the test is in image
    # heights, not pixels, so the random stream does not depend on the output size.
    if n_bays < 1 or hf * storey * cam.scale(min(za, zb)) < 0.006:
        return
    picks = s.rng.random((n_bays, n_floors + 2)).tolist()
    for y in np.arange(ground_h, h - 0.5, storey).tolist():  # storey lines give facades their stripes
        cv.line([P(xa, y, za), P(xb, y, zb)], 0.0005, shade(colour, 0.8))
    # Plain Python beats numpy here: a wall has a few dozen windows at most.
    vx, vh, f, hc, k = cam.vx, cam.vh, cam.f, cam.hc, ASPECT * cam.f
    dx, dz = (xb - xa) / length, (zb - za) / length
    rows = [(ground_h + (j + (1 - hf) / 2) * storey, ground_h + (j + (1 + hf) / 2) * storey) for j in range(n_floors)]
    rows += [(0.5, ground_h - 0.8), (ground_h - 0.65, ground_h - 0.1)]  # shop windows, shop sign
    for i in range(n_bays):
        t0 = 0.2 + (i + (1 - wf) / 2) * bay
        t1 = t0 + wf * bay
        z0, z1 = za + dz * t0, za + dz * t1
        if min(z0, z1) < 0.5:
            continue
        ua, ub = vx + k * (xa + dx * t0) / z0, vx + k * (xa + dx * t1) / z1
        if max(ua, ub) < -0.02 or min(ua, ub) > 1.02 or abs(ua - ub) < 0.004:
            continue
        fa, fb = f / z0, f / z1
        for j, (y0, y1) in enumerate(rows):
            if j == n_floors and not shops or j > n_floors and not (shops and picks[i][j] > 0.5):
                continue
            q = [(ua, vh + (hc - y0) * fa), (ub, vh + (hc - y0) * fb), (ub, vh + (hc - y1) * fb), (ua, vh + (hc - y1) * fa)]
            tall = q[0][1] - q[3][1]
            if min(q[2][1], q[3][1]) > 1.02 or max(q[0][1], q[1][1]) < -0.02 or tall < 0.006:
                continue
            edge = frame if tall > 0.03 else None  # frames only where they are a few pixels apart
            if j < n_floors:
                cv.poly(q, glass[3 if glassy else int(picks[i][j] * 4)], outline=edge)
            elif j == n_floors:
                cv.poly(q, glass[int(picks[i][j] * 2)], outline=edge)
            else:
                sign = hsv(picks[i][0] * 7.0, 0.7, 0.8)
                cv.poly(q, sign, SIGN)
                cv.poly(quad_in(q, 0.15, 0.85, 0.3, 0.7), shade(sign, 0.3) if sum(sign) > 380 else (240, 240, 240))
