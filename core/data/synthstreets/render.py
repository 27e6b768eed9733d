"""synthstreets: procedural CamVid-like street scenes with exact labels, rendered on the CPU.

A scene is a deterministic function of ``(seed, index)``. Its layout is sampled in metres in a
pinhole street frame (a camera over a straight street with a vanishing point) and only rasterised
at the requested size, so the same scene can be rendered at any resolution. Drawing is Pillow's
polygon fill (image and label map with the same shapes) plus vectorised numpy for lighting and
noise, which keeps a 240x180 scene to a few milliseconds.

The renderer aims at CamVid's difficulty profile rather than photo-realism: class pixel shares
close to CamVid's (lots of road, building and sky; thin poles, signs, pedestrians and bicyclists
are rare), overlapping colour ranges between classes (grey sky, grey road, grey buildings, grey
cars), per-instance colours and textures, occlusion in depth order, shadows and per-scene light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.data.synthstreets.shapes import (
    BUILDING,
    ROAD,
    SIDEWALK,
    SKY,
    TREE,
    Camera,
    Canvas,
    Sampler,
    draw_bicyclist,
    draw_clutter,
    draw_fence,
    draw_hedge,
    draw_pedestrian,
    draw_pole,
    draw_sign,
    draw_tree,
    draw_vehicle,
    draw_wall,
    grey,
    hsv,
    mix,
    shade,
    vehicle_length,
)

CLASSES: tuple[str, ...] = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Sidewalk",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
VOID: int = 11

# How much sensor/texture noise each class gets (Sky .. Bicyclist, void); scaled per scene.
_NOISE_AMP = np.array([2, 8, 4, 7, 7, 14, 3, 5, 3, 5, 5, 6], dtype=np.int16)
_Z_FAR = 2000.0  # "infinity" for ground quads: close enough to the vanishing point


@dataclass
class _Street:
    xl: float  # road edges (metres; camera at x = 0)
    xr: float
    walk_l: float  # sidewalk widths
    walk_r: float
    z_end: float  # where the street ends in a row of buildings
    cross: tuple[float, float] | None  # side street: (start z, width)
    leaf_hue: float
    sun: int  # +1: sun on the right, lighting the left facades; the right row shades the street

    def curb(self, side: int) -> float:
        return self.xr if side > 0 else self.xl

    def facade_base(self, side: int) -> float:
        return self.xr + self.walk_r if side > 0 else self.xl - self.walk_l

    def in_cross(self, z0: float, z1: float) -> bool:
        return self.cross is not None and z1 > self.cross[0] - 1 and z0 < self.cross[0] + self.cross[1] + 1


def render_scene(seed: int, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (image uint8 (H, W, 3), mask uint8 (H, W) with values 0..10 and 11 for void)."""
    if height < 8 or width < 8:
        raise ValueError(f"height and width must be >= 8, got {height}x{width}")
    s = Sampler(np.random.default_rng([seed, index]))
    cam = Camera(vx=s.u(0.4, 0.6), vh=s.u(0.44, 0.58), f=s.u(0.95, 1.2), hc=s.u(1.3, 1.7))
    lanes, lane_w = s.i(2, 5), s.u(2.9, 3.4)
    left = s.u(0.3, 0.7) * lanes * lane_w  # where in the road the camera drives
    st = _Street(
        xl=-left,
        xr=lanes * lane_w - left,
        walk_l=s.u(2.5, 6.0),
        walk_r=s.u(2.5, 6.0),
        z_end=s.u(60, 160),
        cross=(s.u(18, 60), s.u(9, 15)) if s.p(0.4) else None,
        leaf_hue=s.u(0.12, 0.3) if s.p(0.85) else s.u(0.05, 0.12),
        sun=s.sign(),
    )
    cv = Canvas(_sky(s, cam, height, width), SKY)
    for _ in range(s.i(0, 5)):  # soft clouds: texture in the sky, which stays Sky
        cu, cvv, r, c = s.u(0, 1), s.u(0, cam.vh * 0.8), s.u(0.04, 0.15), grey(s.u(190, 250), s.u(-0.04, 0.04))
        for _ in range(4):
            cv.ellipse(cu + s.u(-1.5, 1.5) * r, cvv + s.u(-0.3, 0.3) * r, r * s.u(0.6, 1.2), r * s.u(0.25, 0.5), c)
    _draw_ground(cv, cam, s, st, lanes)
    _draw_backdrop(cv, cam, s, st)
    for side in (-1, 1):
        _draw_buildings(cv, cam, s, st, side)
    _draw_objects(cv, cam, s, st, lanes)
    if s.p(0.4):  # the recording car's bonnet, void as in CamVid's dashcam frames
        top, bulge = s.u(0.9, 0.97), s.u(0.02, 0.05)
        pts = (
            [(-0.1, 1.1), (1.1, 1.1), (1.1, top + bulge)]
            + [(u, top + bulge * (2 * u - 1) ** 2) for u in np.linspace(1.0, 0.0, 9).tolist()]
            + [(-0.1, top + bulge)]
        )
        cv.poly(pts, grey(s.u(20, 120)), VOID)
    return _finish(cv, s, np.random.default_rng([seed, index, 1]))


def _sky(s: Sampler, cam: Camera, h: int, w: int) -> Image.Image:
    """Vertical gradient to the horizon: clear blue, white overcast (grey like the road) or hazy."""
    kind = s.i(0, 3)
    if kind == 0:
        top = hsv(s.u(0.55, 0.62), s.u(0.35, 0.6), s.u(0.6, 0.85))
        bottom = hsv(s.u(0.55, 0.6), s.u(0.05, 0.2), s.u(0.85, 1))
    elif kind == 1:
        g = s.u(150, 225)
        top, bottom = grey(g * s.u(0.8, 1.0), s.u(-0.05, 0.03)), grey(min(250, g * s.u(1.0, 1.15)))
    else:
        top = hsv(s.u(0.5, 0.65), s.u(0.1, 0.3), s.u(0.55, 0.8))
        bottom = hsv(s.u(0.05, 0.12), s.u(0.1, 0.3), s.u(0.8, 0.95))
    t = np.clip((np.arange(h, dtype=np.float32) + 0.5) / h / max(cam.vh, 0.05), 0.0, 1.0)[:, None]
    rows = np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t
    return Image.fromarray(rows[:, None, :].astype(np.uint8), "RGB").resize((w, h), Image.NEAREST)


def _draw_ground(cv: Canvas, cam: Camera, s: Sampler, st: _Street, lanes: int) -> None:
    """Pavement, road with marks and patches, side street and curbs; then cast shadows."""
    P = cam.uv
    zn, zf = 0.6, _Z_FAR

    def strip(x0: float, x1: float, z0: float = zn, z1: float = zf) -> list[tuple[float, float]]:
        return [P(x0, 0, z0), P(x1, 0, z0), P(x1, 0, z1), P(x0, 0, z1)]

    asphalt = grey(s.u(55, 150), s.u(-0.06, 0.06))
    paving = s.pick((grey(s.u(110, 190), s.u(-0.05, 0.1)), hsv(s.u(0.0, 0.08), s.u(0.2, 0.45), s.u(0.45, 0.7))))
    back = grey(s.u(80, 160), 0.05)
    cv.poly([(-0.1, cam.vh), (1.1, cam.vh), (1.1, 1.1), (-0.1, 1.1)], back, SIDEWALK)
    for side in (-1, 1):  # forecourt between sidewalk and buildings: grass (Tree, as in CamVid) or paving
        xb, xc = st.facade_base(side), st.curb(side)
        if s.p(0.3):
            cv.poly(strip(xb + side * 20, xb), hsv(st.leaf_hue, s.u(0.3, 0.6), s.u(0.25, 0.45)), TREE)
        c = shade(paving, s.u(0.85, 1.15))
        cv.poly(strip(xb, xc), c, SIDEWALK)
        for z in np.arange(s.u(1, 3), 45.0, s.u(1.5, 3.0)).tolist():  # slab joints, texture only
            cv.line([P(xb, 0, z), P(xc, 0, z)], 0.01 * cam.scale(z), shade(c, 0.8))
    cv.poly(strip(st.xl, st.xr), asphalt, ROAD)
    if st.cross is not None:
        zc, wc = st.cross
        cv.poly(strip(-400, 400, zc, zc + wc), asphalt, ROAD)
    for _ in range(s.i(0, 5)):  # repair patches and manholes: road texture, not a class
        x, z, w, d = s.u(st.xl, st.xr), s.u(4, 40), s.u(0.6, 4), s.u(0.6, 6)
        cv.poly(strip(x, x + w, z, z + d), shade(asphalt, s.u(0.7, 1.25)))
    paint = (235, 235, 225) if s.p(0.8) else (225, 190, 60)
    paint = mix(asphalt, paint, s.u(0.5, 0.95))  # worn paint
    dash, period = s.u(2.0, 4.0), s.u(8.0, 12.0)
    for i in range(1, lanes):
        x = st.xl + (st.xr - st.xl) * i / lanes
        for z in np.arange(s.u(1, period), 90.0, period).tolist():
            if not st.in_cross(z, z + dash):
                cv.poly(strip(x - 0.07, x + 0.07, z, z + dash), paint)
    for x in (st.xl + 0.3, st.xr - 0.3):
        cv.poly(strip(x - 0.07, x + 0.07, 1.0, 150.0), paint)
    if st.cross is not None or s.p(0.2):  # zebra crossing
        zc = st.cross[0] - 3.5 if st.cross is not None else s.u(10, 35)
        for x in np.arange(st.xl + 0.5, st.xr - 0.4, 1.0).tolist():
            cv.poly(strip(x, x + 0.5, zc, zc + 3.0), paint)
    for side in (-1, 1):  # curb faces, visible on the road side
        x = st.curb(side)
        cv.poly([P(x, 0, zn), P(x, 0, zf), P(x, 0.15, zf), P(x, 0.15, zn)], grey(s.u(120, 200)), SIDEWALK)
    _cast_shadows(cv, cam, s, st)


def _cast_shadows(cv: Canvas, cam: Camera, s: Sampler, st: _Street) -> None:
    """Darken the ground on the shady side, as tall buildings do; image only."""
    if s.p(0.35):  # overcast: no hard shadows
        return
    side = st.sun  # the buildings between the sun and the street
    x0 = st.facade_base(side)
    reach = s.u(0.3, 1.2) * (st.xr - st.xl + st.walk_l + st.walk_r)
    shadow = Image.new("L", cv.img.size, 0)
    draw = ImageDraw.Draw(shadow)
    z = 0.6
    while z < st.z_end:
        d = s.u(8, 30)
        r = reach * s.u(0.6, 1.2)
        x1 = x0 - side * r
        draw.polygon(cv.px([cam.uv(x0, 0, z), cam.uv(x1, 0, z), cam.uv(x1, 0, z + d), cam.uv(x0, 0, z + d)]), fill=255)
        z += d
    k = s.u(0.5, 0.7)
    dark = cv.img.point([int(i * k) for i in range(256)] * 3)
    cv.img.paste(dark, (0, 0), shadow)


def _draw_backdrop(cv: Canvas, cam: Camera, s: Sampler, st: _Street) -> None:
    """Buildings closing the street near the vanishing point, so it is not a bare horizon."""
    z = st.z_end
    x = -60.0
    while x < 60.0:
        w, h = s.u(8, 25), s.u(6, 30)
        c = grey(s.u(70, 190), s.u(-0.1, 0.2))
        cv.poly([cam.uv(x, 0, z), cam.uv(x + w, 0, z), cam.uv(x + w, h, z), cam.uv(x, h, z)], c, BUILDING)
        x += w


def _building_colour(s: Sampler) -> tuple[tuple[int, int, int], int]:
    style = s.i(0, 5)
    if style == 0:  # render / stucco, many pale hues
        return hsv(s.u(0.0, 1.0), s.u(0.05, 0.3), s.u(0.55, 0.9)), style
    if style == 1:  # brick
        return hsv(s.u(0.0, 0.07), s.u(0.35, 0.65), s.u(0.3, 0.6)), style
    if style == 2:  # concrete
        return grey(s.u(90, 180), s.u(-0.05, 0.08)), style
    if style == 3:  # glass and steel
        return hsv(s.u(0.5, 0.62), s.u(0.1, 0.35), s.u(0.3, 0.6)), style
    return grey(s.u(50, 100), s.u(0.0, 0.2)), style  # dark stone


def _draw_buildings(cv: Canvas, cam: Camera, s: Sampler, st: _Street, side: int) -> None:
    """A row of facades along one side of the street, with gaps, setbacks and a side street."""
    tall = s.u(5, 11) if s.p(0.6) else s.u(11, 22)  # the district's typical height
    runs: list[tuple[bool, float, float, float, float, bool]] = []  # front?, z0, z1, x, h, end wall seen?
    z, prev_h = s.u(-10, -1), 0.0
    while z < st.z_end:
        length = s.u(6, 28)
        if st.in_cross(z, z + length):
            z, prev_h = st.cross[0] + st.cross[1] + 1, 0.0
            continue
        if s.p(0.18):  # gap: sky and a lower building further back
            runs.append((False, z, z + length, st.facade_base(side) + side * s.u(6, 20), tall * s.u(0.4, 0.9), True))
            prev_h = 0.0
        else:
            h = tall * s.u(0.6, 1.4)
            # A taller neighbour in front hides this building's end wall: skip its windows.
            runs.append((True, z, z + length, st.facade_base(side) + side * s.u(0, 1.5), h, h > prev_h))
            prev_h = h
        z += length
    # Back row first, then far to near: painter's order gives the right occlusion.
    for _, z0, z1, xf, h, end_seen in sorted(runs, key=lambda r: (r[0], -r[1])):
        _draw_facade(cv, cam, s, st, side, xf, max(z0, 0.8), min(z1, st.z_end), h, end_seen)


def _draw_facade(
    cv: Canvas, cam: Camera, s: Sampler, st: _Street, side: int, xf: float, z0: float, z1: float, h: float, end_seen: bool
) -> None:
    """Facade on the plane x = xf plus, where the building starts ahead of us, its darker end wall."""
    colour, style = _building_colour(s)
    colour = shade(colour, 1.0 if side == -st.sun else s.u(0.6, 0.8))  # the sun side is brighter
    depth, end = s.u(8, 20), shade(colour, s.u(0.5, 0.75))
    if z0 > 1.5:
        draw_wall(cv, cam, s, (xf + side * depth, z0), (xf, z0), h, end, style, windows=end_seen)
    if z1 > z0:
        draw_wall(cv, cam, s, (xf, z0), (xf, z1), h, colour, style)


def _draw_objects(cv: Canvas, cam: Camera, s: Sampler, st: _Street, lanes: int) -> None:
    """Street furniture, vegetation, traffic and people, painted far to near."""
    items: list[tuple[float, Callable[[], None]]] = []

    def add(z: float, fn: Callable, *args) -> None:
        items.append((z, lambda: fn(cv, cam, s, *args)))

    sides = (-1, 1)
    # Street lamps / utility poles at intervals along chosen sides.
    for side in sides:
        if s.p(0.75):
            kind = 0 if s.p(0.75) else 1
            z, gap = s.u(3, 15), s.u(14, 30)
            while z < 80:
                add(z, draw_pole, st.curb(side) + side * 0.45, z, side, kind)
                z += gap
    if st.cross is not None:
        for side in sides:
            add(st.cross[0] - 1, draw_pole, st.curb(side) + side * 0.5, st.cross[0] - 1, side, 2)
    elif s.p(0.4):
        side, z = s.sign(), s.u(10, 40)
        add(z, draw_pole, st.curb(side) + side * 0.5, z, side, 2)
    for _ in range(s.i(2, 8)):
        side, z = s.sign(), s.u(4, 40)
        add(z, draw_sign, st.curb(side) + side * s.u(0.3, 0.9), z)
    # Trees: avenues on one or both sides, or a few scattered ones.
    for side in sides:
        if s.p(0.45):
            z, gap, x = s.u(2, 12), s.u(6, 14), st.curb(side) + side * s.u(0.8, 1.6)
            while z < 90:
                add(z, draw_tree, x + s.u(-0.2, 0.2), z, st.leaf_hue)
                z += gap * s.u(0.8, 1.2)
        if s.p(0.3):
            z0 = s.u(3, 40)
            z1 = z0 + s.u(5, 30)
            add(z0, draw_hedge, st.facade_base(side) - side * 0.6, z0, z1, st.leaf_hue)
    # Parked cars along the curbs, traffic in the lanes (oncoming on the left lanes).
    for side in sides:
        if s.p(0.45):
            z = s.u(3, 15)
            while z < 70:
                kind = 0 if s.p(0.85) else 1
                length = vehicle_length(s, kind)
                if not s.p(0.25) and not st.in_cross(z, z + length):
                    add(z, draw_vehicle, st.curb(side) - side * 1.1, z, kind, length, False)
                z += length + s.u(0.6, 6)
    for i in range(lanes):
        xc = st.xl + (i + 0.5) * (st.xr - st.xl) / lanes
        oncoming = i < lanes // 2
        z = s.u(6, 25) if abs(xc) < 1.6 else s.u(4, 25)
        for _ in range(s.pick((0, 0, 1, 1, 2))):
            kind = 0 if s.p(0.75) else (1 if s.p(0.7) else 2)
            length = vehicle_length(s, kind)
            add(z, draw_vehicle, xc + s.u(-0.3, 0.3), z, kind, length, oncoming)
            z += length + s.u(4, 25)
    # People: on the sidewalks, sometimes crossing; bicyclists near the curb.
    for _ in range(s.pick((0, 1, 2, 2, 3, 3, 4, 5, 6, 8, 10, 12, 14))):
        side, z = s.sign(), 3.5 + 36 * s.u() ** 2  # people near the camera are common in CamVid
        x = st.curb(side) + side * s.u(0.3, 0.9) * (st.walk_r if side > 0 else st.walk_l)
        if s.p(0.15):
            x = s.u(st.xl, st.xr)
            z = max(z, 7.0)
        add(z, draw_pedestrian, x, z)
    for _ in range(s.pick((0, 0, 0, 1, 1, 1, 1, 1, 2, 2))):
        side, z = s.sign(), 5 + 30 * s.u() ** 2
        add(z, draw_bicyclist, st.curb(side) - side * s.u(0.5, 1.2), z)
    # Fences: a railing along a curb or a solid fence in front of the buildings, in short pieces
    # so that depth sorting against people and cars stays right.
    for _ in range(s.pick((0, 1, 1, 2))):
        side, kind = s.sign(), s.i(0, 2)
        x = st.curb(side) + side * 0.2 if kind == 0 else st.facade_base(side) - side * 0.3
        z0 = s.u(3, 25)
        z1 = z0 + s.u(8, 40)
        rgb = s.pick((grey(s.u(60, 180)), (40, 70, 50), hsv(s.u(0.05, 0.1), 0.5, s.u(0.3, 0.6))))
        for za in np.arange(z0, z1, 3.0).tolist():
            add(za, draw_fence, x, za, min(za + 3.0, z1), kind, rgb)
    for _ in range(s.i(0, 9)):
        side, z = s.sign(), s.u(4, 40)
        add(z, draw_clutter, st.curb(side) + side * s.u(0.5, 2.5), z)
    for _, fn in sorted(items, key=lambda it: -it[0]):
        fn()


def _finish(cv: Canvas, s: Sampler, noise_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Lens blur, per-scene exposure and tint, uneven light, class-dependent grain."""
    h, w = cv.h, cv.w
    img = cv.img.filter(ImageFilter.BoxBlur(0.5 * h / 180))  # soft edges, as through a lens
    gain = s.u(0.7, 1.25)
    tint = (gain * s.u(0.9, 1.1), gain, gain * s.u(0.88, 1.1))
    gamma = s.u(0.8, 1.25)
    ramp = 255 * (np.arange(256) / 255) ** gamma
    lut = np.minimum(255, np.concatenate([ramp * t for t in tint])).astype(np.int32).tolist()
    img = img.point(lut)
    # Smooth light field (clouds, vignetting) from a coarse grid, upsampled by Pillow.
    grid = np.clip(128 * (1 + np.array([[s.u(-0.15, 0.15) for _ in range(5)] for _ in range(4)])), 0, 255)
    field = np.asarray(Image.fromarray(grid.astype(np.uint8), "L").resize((w, h), Image.BILINEAR), dtype=np.uint16)
    mask = np.asarray(cv.mask)
    amp = (_NOISE_AMP * s.u(0.6, 1.4)).astype(np.int16)[mask]
    coarse = noise_rng.integers(64, 192, size=(h // 4 + 1, w // 4 + 1), dtype=np.uint8)
    coarse = np.asarray(Image.fromarray(coarse, "L").resize((w, h), Image.BILINEAR), dtype=np.int16) - 128
    fine = noise_rng.integers(-32, 32, size=(h, w), dtype=np.int16)
    noise = ((fine + 2 * coarse) * amp) >> 6
    out = (np.asarray(img, dtype=np.uint16) * field[:, :, None]) >> 7
    out = out.astype(np.int16) + noise[:, :, None]
    return np.clip(out, 0, 255).astype(np.uint8), mask.copy()
