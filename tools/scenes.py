#!/usr/bin/env python3
"""Seeded procedural urban/landscape scenes with pixel-exact class masks.

`make_scene(rng, h, w)` returns (image uint8 HxWx3 RGB, mask uint8 HxW).
Every region is a boolean array that is painted into the image and the mask
in the same call (`Canvas.paint`), in painter's order (far to near), so
occlusion is identical in both. Lighting, noise and blur are applied to the
image only, after all regions are drawn, so the mask stays exact.

Two layouts share the same painters:
  * "landscape": horizon, free-standing buildings, grass, a lake, a road that
    runs either to a vanishing point or across the image;
  * "street" (`make_street_scene`): a centred perspective road with facades
    converging to the vanishing point on both sides, trees along the verges,
    cars and people at several depths, with shadows (the photo-like case).

All sizes are fractions of the image size, so a scene scales with it.

Quick look (writes /tmp/scenes.png):  python3 tools/scenes.py
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

CLASSES: List[str] = ["sky", "building", "road", "grass", "tree", "water", "car", "person"]
PALETTE: List[List[int]] = [
    [70, 130, 180],   # sky
    [128, 64, 64],    # building
    [128, 64, 128],   # road
    [152, 251, 152],  # grass
    [34, 139, 34],    # tree
    [0, 90, 200],     # water
    [220, 20, 60],    # car
    [255, 200, 0],    # person
]
SKY, BUILDING, ROAD, GRASS, TREE, WATER, CAR, PERSON = range(len(CLASSES))


# --------------------------------------------------------------------------
# Noise and drawing primitives (vectorised over the whole frame)
# --------------------------------------------------------------------------


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in [0, 1): a random grid every `cell` pixels, bilinearly interpolated."""
    gy, gx = int(h / cell) + 2, int(w / cell) + 2
    grid = rng.random((gy, gx), dtype=np.float32)
    y = np.arange(h, dtype=np.float32) / cell
    x = np.arange(w, dtype=np.float32) / cell
    y0, x0 = y.astype(np.int32), x.astype(np.int32)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def fractal_noise(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 3) -> np.ndarray:
    """Sum of value-noise octaves (halving cell and amplitude), normalised to [0, 1]."""
    total = np.zeros((h, w), np.float32)
    amp, norm = 1.0, 0.0
    for _ in range(octaves):
        total += amp * value_noise(rng, h, w, max(cell, 1.0))
        norm += amp
        amp, cell = amp / 2, cell / 2
    return total / norm


def jitter(rng: np.random.Generator, rgb, amount: float = 18.0) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.normal(0, amount, 3), 0, 255).astype(np.float32)


def shade(base: np.ndarray, field: np.ndarray, amp: float) -> np.ndarray:
    """Texture = base colour modulated by a [0,1] field (HxW) with relative amplitude `amp`."""
    return base[None, None, :] * (1 + amp * (field[..., None] - 0.5))


def ellipse(yy, xx, cy, cx, ry, rx) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def rect(yy, xx, y0, y1, x0, x1) -> np.ndarray:
    return (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)


class Canvas:
    """Float image + class mask; `paint` writes both from one boolean region."""

    def __init__(self, rng: np.random.Generator, h: int, w: int) -> None:
        self.rng, self.h, self.w = rng, h, w
        self.img = np.zeros((h, w, 3), np.float32)
        self.mask = np.zeros((h, w), np.uint8)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.yy, self.xx = yy, xx
        self.size = float(min(h, w))
        # one fine grain field per scene, reused by all textures (cheap, still varied by colour)
        self.grain = value_noise(rng, h, w, max(1.5, self.size / 128))
        self.blotch = fractal_noise(rng, h, w, self.size / 12)

    def crop(self, y0: float, y1: float, x0: float, x1: float) -> "Canvas":
        """A view of the rectangle [y0,y1) x [x0,x1) (clipped): same absolute coordinates, same
        scale, writes go to this canvas. Painting objects in their bounding box keeps scenes fast."""
        y0, y1 = int(np.clip(np.floor(y0), 0, self.h)), int(np.clip(np.ceil(y1), 0, self.h))
        x0, x1 = int(np.clip(np.floor(x0), 0, self.w)), int(np.clip(np.ceil(x1), 0, self.w))
        view = object.__new__(Canvas)
        view.rng, view.size = self.rng, self.size
        view.h, view.w = y1 - y0, x1 - x0
        for name in ("img", "mask", "yy", "xx", "grain", "blotch"):
            setattr(view, name, getattr(self, name)[y0:y1, x0:x1])
        return view

    def paint(self, region: np.ndarray, colour: np.ndarray, cls: int) -> None:
        """colour: HxWx3 texture or a single RGB triple."""
        self.img[region] = colour[region] if colour.ndim == 3 else colour
        self.mask[region] = cls

    def darken(self, region: np.ndarray, factor: float) -> None:
        """Shadow: changes the image only (the ground under a shadow keeps its class)."""
        self.img[region] *= factor


# --------------------------------------------------------------------------
# Region painters
# --------------------------------------------------------------------------


def paint_sky(c: Canvas, horizon: float) -> None:
    rng = c.rng
    kind = rng.choice(["clear", "overcast", "dusk"], p=[0.6, 0.25, 0.15])
    top, bottom = {
        "clear": ([60, 120, 215], [170, 205, 240]),
        "overcast": ([150, 158, 170], [200, 205, 212]),
        "dusk": ([70, 80, 160], [245, 170, 110]),
    }[kind]
    t = np.clip(c.yy / max(horizon, 1.0), 0, 1)[..., None]
    sky = jitter(rng, top, 12) * (1 - t) + jitter(rng, bottom, 12) * t
    clouds = np.clip((fractal_noise(rng, c.h, c.w, c.size / 5) - rng.uniform(0.45, 0.65)) * 3.5, 0, 1)
    clouds = clouds[..., None] * rng.uniform(0.4, 0.9)
    sky = sky * (1 - clouds) + jitter(rng, [240, 240, 245], 8) * clouds
    c.paint(np.ones((c.h, c.w), bool), sky, SKY)


def building_texture(c: Canvas, y_ref, x_ref, period: Tuple[float, float], fill: Tuple[float, float]) -> np.ndarray:
    """Facade colour with a grid of windows in (y_ref, x_ref) coordinates (pixels or perspective units)."""
    rng = c.rng
    wall = jitter(rng, rng.choice([[150, 150, 150], [185, 165, 135], [160, 90, 70], [210, 205, 195],
                                   [110, 115, 125]]), 20)
    tex = shade(wall, c.blotch * 0.6 + c.grain * 0.4, 0.35)
    glass = jitter(rng, rng.choice([[50, 70, 95], [90, 120, 150], [35, 35, 45], [230, 215, 150]]), 15)
    wy = np.mod(y_ref, period[0]) < period[0] * fill[0]
    wx = np.mod(x_ref, period[1]) < period[1] * fill[1]
    win = wy & wx
    tex[win] = shade(glass, c.grain, 0.4)[win]
    return tex


def paint_free_building(c: Canvas, x0: float, x1: float, top: float, base: float) -> None:
    rng = c.rng
    c = c.crop(top - (x1 - x0) * 0.5, base, x0, x1)
    body = rect(c.yy, c.xx, top, base, x0, x1)
    bw = x1 - x0
    p = c.size * rng.uniform(0.035, 0.07)
    tex = building_texture(c, c.yy - top - p * 0.4, c.xx - x0 - p * 0.3, (p, p * rng.uniform(0.7, 1.3)),
                           (rng.uniform(0.45, 0.7), rng.uniform(0.4, 0.7)))
    # shaded side face: gives the block volume
    side = body & (c.xx > x1 - bw * rng.uniform(0.15, 0.3))
    tex[side] *= rng.uniform(0.55, 0.8)
    c.paint(body, tex, BUILDING)
    if rng.random() < 0.4:  # gable roof
        rh = bw * rng.uniform(0.2, 0.45)
        roof = (c.yy < top) & (c.yy >= top - rh) & (np.abs(c.xx - (x0 + x1) / 2) <= (c.yy - top + rh) / rh * bw / 2)
        c.paint(roof, shade(jitter(rng, [120, 60, 50], 25), c.grain, 0.3), BUILDING)


def paint_grass(c: Canvas, region: np.ndarray) -> None:
    rng = c.rng
    base = jitter(rng, rng.choice([[80, 140, 60], [110, 150, 70], [130, 140, 80], [70, 120, 55]]), 15)
    field = c.blotch * 0.5 + c.grain * 0.5
    if rng.random() < 0.4:  # mowing stripes
        field = field * 0.7 + 0.3 * (np.sin(c.xx * rng.uniform(0.05, 0.15) + c.yy * 0.02) > 0)
    c.paint(region, shade(base, field, 0.5), GRASS)


def paint_water(c: Canvas, region: np.ndarray, horizon: float) -> None:
    rng = c.rng
    base = jitter(rng, rng.choice([[40, 90, 150], [50, 110, 130], [30, 70, 110]]), 15)
    depth = np.clip((c.yy - horizon) / max(c.h - horizon, 1.0), 0.02, 1)
    # waves get longer and lower towards the horizon (perspective)
    waves = np.sin(c.yy * 1.2 / depth ** 0.5 + c.blotch * 8 + c.xx * 0.05) * 0.5 + 0.5
    tex = shade(base, 0.5 * waves + 0.5 * c.grain, 0.45)
    tex += 60 * (1 - depth[..., None]) * rng.uniform(0.3, 1.0)  # sky reflection near the horizon
    c.paint(region, tex, WATER)


def road_texture(c: Canvas) -> np.ndarray:
    base = jitter(c.rng, [85, 85, 90], 15)
    return shade(base, c.grain * 0.7 + c.blotch * 0.3, 0.35)


def paint_perspective_road(c: Canvas, horizon: float, vx: float, spread: float) -> np.ndarray:
    """Road from the vanishing point (vx, horizon); `spread` = half-width per row below the horizon."""
    rng = c.rng
    below = c.yy - horizon
    u = (c.xx - vx) / np.maximum(below * spread, 1e-3)  # -1..1 across the road
    road = (below > 0) & (np.abs(u) <= 1)
    tex = road_texture(c)
    # dashed centre line: dashes are periodic in depth ~ 1/below
    dash = np.mod(c.size / np.maximum(below, 1) * 2.0, 1.0) < 0.5
    lines = road & (((np.abs(u) < 0.035) & dash) | (np.abs(np.abs(u) - 0.93) < 0.025))
    tex[lines] = jitter(rng, rng.choice([[235, 235, 230], [230, 200, 60]]), 8)
    c.paint(road, tex, ROAD)
    return road


def paint_cross_road(c: Canvas, y0: float, y1: float) -> None:
    road = (c.yy >= y0) & (c.yy < y1)
    tex = road_texture(c)
    mid = (y0 + y1) / 2
    lines = road & (np.abs(c.yy - mid) < max(1.0, (y1 - y0) * 0.04)) & (np.mod(c.xx, c.size * 0.12) < c.size * 0.07)
    tex[lines] = jitter(c.rng, [235, 235, 230], 8)
    c.paint(road, tex, ROAD)


def paint_tree(c: Canvas, cx: float, base: float, height: float) -> None:
    rng = c.rng
    c = c.crop(base - height * 1.2, base + height * 0.1, cx - height * 0.6, cx + height * 0.6)
    c.darken(ellipse(c.yy, c.xx, base, cx + height * 0.15, height * 0.05, height * 0.3), 0.65)
    trunk_w = height * rng.uniform(0.06, 0.1)
    trunk = rect(c.yy, c.xx, base - height * 0.5, base, cx - trunk_w / 2, cx + trunk_w / 2)
    c.paint(trunk, shade(jitter(rng, [95, 70, 50], 15), c.grain, 0.4), TREE)
    leaf = jitter(rng, rng.choice([[40, 95, 35], [55, 110, 40], [30, 75, 40], [150, 110, 40]], p=[0.35, 0.3, 0.25, 0.1]), 12)
    # leaf noise: high-contrast fine speckle plus darker blotches (self-shadowing)
    leaves = shade(leaf, 0.6 * c.grain + 0.4 * c.blotch, 0.9)
    if rng.random() < 0.3:  # conifer: triangle
        top = base - height
        crown = (c.yy >= top) & (c.yy < base - height * 0.2) & \
                (np.abs(c.xx - cx) <= (c.yy - top) / (height * 0.8) * height * 0.3)
    else:
        crown = np.zeros((c.h, c.w), bool)
        for _ in range(rng.integers(3, 6)):
            r = height * rng.uniform(0.18, 0.3)
            crown |= ellipse(c.yy, c.xx, base - height * rng.uniform(0.55, 0.8), cx + height * rng.uniform(-0.15, 0.15),
                             r, r * rng.uniform(0.9, 1.3))
    # light from the upper left
    lit = np.clip(1.15 - (c.xx - cx) / height * 0.6 - (c.yy - base + height) / height * 0.3, 0.6, 1.2)
    c.paint(crown, leaves * lit[..., None], TREE)


def paint_car(c: Canvas, cx: float, base: float, width: float, rear: bool) -> None:
    rng = c.rng
    c = c.crop(base - width, base + width * 0.1, cx - width * 0.65, cx + width * 0.65)
    c.darken(ellipse(c.yy, c.xx, base, cx, width * 0.08, width * 0.6), 0.5)
    paint = jitter(rng, rng.choice([[200, 30, 30], [30, 60, 160], [230, 230, 230], [40, 40, 45],
                                    [160, 160, 170], [220, 180, 40]]), 15)
    body_tex = shade(paint, c.grain, 0.15)
    body_tex *= np.clip(1.2 - (c.yy - base + width * 0.5) / width, 0.7, 1.2)[..., None]  # top lit
    glass = jitter(rng, [45, 55, 70], 10)
    tyre = np.array([25, 25, 28], np.float32)
    hw = width / 2
    if rear:  # seen from behind (on the perspective road)
        body = rect(c.yy, c.xx, base - width * 0.5, base - width * 0.1, cx - hw, cx + hw)
        cabin = (c.yy >= base - width * 0.78) & (c.yy < base - width * 0.5) & \
                (np.abs(c.xx - cx) <= hw * (0.7 + 0.25 * (c.yy - base + width * 0.78) / (width * 0.28)))
        wheels = (rect(c.yy, c.xx, base - width * 0.12, base, cx - hw * 0.95, cx - hw * 0.6) |
                  rect(c.yy, c.xx, base - width * 0.12, base, cx + hw * 0.6, cx + hw * 0.95))
        window = cabin & (c.yy > base - width * 0.72) & (np.abs(c.xx - cx) <= hw * 0.72)
        lights = body & (c.yy < base - width * 0.35) & (c.yy > base - width * 0.43) & (np.abs(c.xx - cx) > hw * 0.7)
    else:  # side view
        body = rect(c.yy, c.xx, base - width * 0.3, base - width * 0.08, cx - hw, cx + hw)
        cabin = (c.yy >= base - width * 0.48) & (c.yy < base - width * 0.3) & \
                (np.abs(c.xx - cx + width * 0.05) <= hw * (0.45 + 0.2 * (c.yy - base + width * 0.48) / (width * 0.18)))
        r = width * 0.11
        wheels = (ellipse(c.yy, c.xx, base - r, cx - hw * 0.6, r, r) | ellipse(c.yy, c.xx, base - r, cx + hw * 0.6, r, r))
        window = cabin & (c.yy > base - width * 0.45) & (np.abs(c.xx - cx + width * 0.05) <= hw * 0.5)
        lights = body & (c.yy < base - width * 0.22) & (c.yy > base - width * 0.27) & (np.abs(c.xx - cx) > hw * 0.92)
    c.paint(wheels, tyre, CAR)
    c.paint(body | cabin, body_tex, CAR)
    c.paint(window, shade(glass, c.grain, 0.3), CAR)
    c.paint(lights, np.array([220, 40, 30], np.float32), CAR)


def paint_person(c: Canvas, cx: float, base: float, height: float) -> None:
    rng = c.rng
    c = c.crop(base - height, base + height * 0.05, cx - height * 0.3, cx + height * 0.5)
    c.darken(ellipse(c.yy, c.xx, base, cx + height * 0.2, height * 0.04, height * 0.25), 0.6)
    skin = jitter(rng, rng.choice([[235, 195, 165], [190, 140, 100], [120, 80, 55]]), 10)
    shirt = jitter(rng, rng.uniform(30, 230, 3), 10)
    trousers = jitter(rng, rng.choice([[40, 50, 90], [50, 50, 50], [150, 130, 100], [90, 60, 40]]), 12)
    h = height
    stride = h * rng.uniform(0.0, 0.12)  # walking: legs apart at the feet
    t = np.clip((c.yy - base + h * 0.48) / (h * 0.48), 0, 1)
    leg_w = h * 0.065
    legs = (c.yy >= base - h * 0.48) & (c.yy < base) & (
        (np.abs(c.xx - (cx - h * 0.045 - stride * t)) <= leg_w) | (np.abs(c.xx - (cx + h * 0.045 + stride * t)) <= leg_w))
    torso = rect(c.yy, c.xx, base - h * 0.82, base - h * 0.45, cx - h * 0.13, cx + h * 0.13)
    arms = rect(c.yy, c.xx, base - h * 0.8, base - h * 0.5, cx - h * 0.19, cx + h * 0.19)
    head = ellipse(c.yy, c.xx, base - h * 0.9, cx, h * 0.09, h * 0.075)
    c.paint(legs, shade(trousers, c.grain, 0.25), PERSON)
    c.paint(torso | arms, shade(shirt, c.grain, 0.25), PERSON)
    c.paint(head, shade(skin, c.grain, 0.15), PERSON)


# --------------------------------------------------------------------------
# Foreground objects, drawn far-to-near
# --------------------------------------------------------------------------


def place_objects(c: Canvas, horizon: float, road: np.ndarray, n_trees: int, n_cars: int, n_people: int,
                  rear_cars: bool) -> None:
    """Scatter trees (off-road), cars (on the road if there is one) and people; size grows with depth."""
    rng = c.rng
    ground = c.h - horizon
    road_rows = np.flatnonzero(road.any(axis=1))
    objs = []
    for kind, n in (("tree", n_trees), ("car", n_cars), ("person", n_people)):
        for _ in range(n):
            if kind == "car" and road_rows.size:
                base = float(rng.choice(road_rows[road_rows > horizon + ground * 0.25])
                             if (road_rows > horizon + ground * 0.25).any() else road_rows[-1])
                cols = np.flatnonzero(road[min(int(base), c.h - 1)])
                cx = float(rng.uniform(cols[0], cols[-1] + 1))
            else:
                base = horizon + ground * rng.uniform(0.2, 1.1)
                cx = rng.uniform(-0.05, 1.05) * c.w
                if kind == "tree" and road_rows.size and road[min(int(base), c.h - 1), int(np.clip(cx, 0, c.w - 1))]:
                    continue  # no trees in the middle of the road
            objs.append((base, kind, cx))
    for base, kind, cx in sorted(objs):
        near = 0.35 + 0.65 * np.clip((base - horizon) / ground, 0, 1.2)  # perspective scale
        if kind == "tree":
            paint_tree(c, cx, base, c.size * near * rng.uniform(0.35, 0.6))
        elif kind == "car":
            paint_car(c, cx, base, c.size * near * rng.uniform(0.25, 0.38), rear_cars)
        else:
            paint_person(c, cx, base, c.size * near * rng.uniform(0.22, 0.34))


# --------------------------------------------------------------------------
# Camera effects (image only)
# --------------------------------------------------------------------------


def blur3(img: np.ndarray, a: float) -> np.ndarray:
    """Separable 3-tap blur [a, 1-2a, a] (edge-replicated)."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    v = a * p[:-2] + (1 - 2 * a) * p[1:-1] + a * p[2:]
    return a * v[:, :-2] + (1 - 2 * a) * v[:, 1:-1] + a * v[:, 2:]


def camera(c: Canvas) -> np.ndarray:
    rng = c.rng
    img = c.img
    angle = rng.uniform(0, 2 * np.pi)
    ramp = ((c.xx / c.w - 0.5) * np.cos(angle) + (c.yy / c.h - 0.5) * np.sin(angle))[..., None].astype(np.float32)
    img = img * (1 + rng.uniform(0, 0.35) * ramp)                               # lighting gradient
    img = (img - 128) * rng.uniform(0.75, 1.2) + 128 + rng.uniform(-25, 25)     # contrast, brightness
    img = img * rng.uniform(0.88, 1.12, 3).astype(np.float32)                   # colour cast
    img = blur3(img, rng.uniform(0.0, 0.25))                                    # mild defocus
    img = img + rng.standard_normal(img.shape, np.float32) * rng.uniform(1.5, 7)  # sensor noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------


def _landscape(c: Canvas) -> None:
    rng = c.rng
    h, w = c.h, c.w
    horizon = h * rng.uniform(0.3, 0.55)
    paint_sky(c, horizon)
    # buildings stand on the horizon; the ground painted next hides their bases
    x = rng.uniform(-0.2, 0.1) * w
    while x < w:
        bw = w * rng.uniform(0.12, 0.3)
        if rng.random() < 0.75:
            top = horizon - h * rng.uniform(0.08, 0.4)
            paint_free_building(c, x, x + bw, max(top, h * 0.03), horizon + h * 0.02)
        x += bw + w * rng.uniform(0.0, 0.15)
    paint_grass(c, c.yy >= horizon + rng.normal(0, 1.5, (1, w)).cumsum(axis=1).clip(-3, 3))
    if rng.random() < 0.6:  # lake: a wavy-edged band or blob on one side
        side = rng.choice([-1, 1])
        cx = w * (0.5 + side * rng.uniform(0.15, 0.4))
        cy = horizon + (h - horizon) * rng.uniform(0.25, 0.6)
        edge = (c.blotch - 0.5) * h * 0.12
        lake = ellipse(c.yy + edge, c.xx, cy, cx, (h - horizon) * rng.uniform(0.25, 0.5), w * rng.uniform(0.25, 0.5))
        paint_water(c, lake & (c.yy > horizon), horizon)
    road = np.zeros((h, w), bool)
    if rng.random() < 0.55:
        road = paint_perspective_road(c, horizon, w * rng.uniform(0.2, 0.8), rng.uniform(0.5, 1.3))
    elif rng.random() < 0.8:
        y0 = horizon + (h - horizon) * rng.uniform(0.3, 0.6)
        y1 = y0 + (h - horizon) * rng.uniform(0.15, 0.3)
        paint_cross_road(c, y0, y1)
        road = (c.yy >= y0) & (c.yy < y1)
    place_objects(c, horizon, road, rng.integers(1, 5), rng.integers(0, 4) if road.any() else 0,
                  rng.integers(1, 4), rear_cars=False)


def _street(c: Canvas) -> None:
    rng = c.rng
    h, w = c.h, c.w
    horizon = h * rng.uniform(0.35, 0.5)
    vx = w * rng.uniform(0.4, 0.6)
    paint_sky(c, horizon)
    for side in (-1, 1):
        paint_facades(c, horizon, vx, side)
    # the ground in front of the facades (everything below the horizon that is still sky)
    paint_grass(c, (c.yy > horizon) & (c.mask == SKY))
    spread = rng.uniform(0.6, 1.1)
    road = paint_perspective_road(c, horizon, vx, spread)
    place_objects(c, horizon, road, rng.integers(2, 6), rng.integers(1, 4), rng.integers(1, 5), rear_cars=True)


def paint_facades(c: Canvas, horizon: float, vx: float, side: int) -> None:
    """A row of facades on one side of the street, converging to the vanishing point.

    In perspective, depth ~ 1/|x - vx| and height above the horizon ~ (horizon - y)/|x - vx|,
    so each facade is a depth interval with its own roof height, and window grids are laid out
    in (height, depth) coordinates."""
    rng = c.rng
    d = 1.0
    limit = c.size / max(c.w * 0.06, 1.0)  # stop short of the vanishing point
    while d < limit:
        d1 = d * rng.uniform(1.3, 2.2)
        x_far, x_near = vx + side * c.size / d1, vx + side * c.size / d
        f = c.crop(0, c.h, min(x_far, x_near), max(x_far, x_near) + 1)
        dx = np.maximum((f.xx - vx) * side, 1e-3)
        depth, height = f.size / dx, (horizon - f.yy) / dx
        roof = rng.uniform(0.3, 1.1)
        region = (depth >= d) & (depth < d1) & (height <= roof) & (height >= -0.1)
        tex = building_texture(f, height, depth, (rng.uniform(0.08, 0.14), rng.uniform(0.3, 0.6)),
                               (rng.uniform(0.45, 0.65), rng.uniform(0.4, 0.6)))
        tex *= rng.uniform(0.65, 0.95)  # facades facing the street are in partial shade
        f.paint(region, tex, BUILDING)
        d = d1


def make_scene(rng: np.random.Generator, height: int, width: int, street: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
    """One random scene; `street=None` picks the layout at random (30% street)."""
    c = Canvas(rng, height, width)
    if street is None:
        street = rng.random() < 0.3
    (_street if street else _landscape)(c)
    return camera(c), c.mask


def make_street_scene(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """The photo-like street composite."""
    return make_scene(rng, height, width, street=True)


def colourise(mask: np.ndarray) -> np.ndarray:
    return np.asarray(PALETTE, np.uint8)[mask]


if __name__ == "__main__":
    import time
    from PIL import Image

    tiles = []
    t0 = time.perf_counter()
    for seed in range(8):
        img, mask = make_scene(np.random.default_rng(seed), 257, 257)
        tiles.append(np.concatenate([img, colourise(mask)], axis=0))
    print(f"{(time.perf_counter() - t0) / 8 * 1000:.1f} ms/scene")
    Image.fromarray(np.concatenate(tiles, axis=1)).save("/tmp/scenes.png")
