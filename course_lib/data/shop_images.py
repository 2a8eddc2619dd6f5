"""Procedural product pictures for the shop: one shape per subcategory, in the item's colour, with a pattern.

Not an image loader (see ``Dataset.image``). Drawing is pure NumPy on a pixel grid, so the same seed gives the
same pixels with any Pillow version; Pillow only writes the PNG.
"""
from __future__ import annotations

import numpy as np

SIZE = 64  # pixels per side


def _grid(size: int):
    c = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    return np.meshgrid(c, c)  # x grows right, y grows down


def _rect(x, y, cx, cy, w, h):
    return (np.abs(x - cx) <= w) & (np.abs(y - cy) <= h)


def _rrect(x, y, cx, cy, w, h, r):
    dx = np.maximum(np.abs(x - cx) - (w - r), 0)
    dy = np.maximum(np.abs(y - cy) - (h - r), 0)
    return dx**2 + dy**2 <= r**2


def _disc(x, y, cx, cy, r):
    return (x - cx) ** 2 + (y - cy) ** 2 <= r**2


def _ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1


def _poly(x, y, pts):
    """Inside a convex polygon given clockwise on screen (y down)."""
    inside = np.ones_like(x, dtype=bool)
    n = len(pts)
    for i in range(n):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % n]
        inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0
    return inside


def shape_mask(shape: str, x, y) -> np.ndarray:
    """Boolean mask of ``shape`` on coordinates ``x, y`` (in [-1, 1], y down)."""
    if shape == "rounded_square":
        return _rrect(x, y, 0, 0, 0.5, 0.5, 0.18) | _rect(x, y, 0, 0, 0.2, 0.85)
    if shape == "capsule":
        return _rrect(x, y, 0, 0, 0.22, 0.75, 0.22)
    if shape == "arch":
        return (_disc(x, y, 0, 0.1, 0.7) & ~_disc(x, y, 0, 0.1, 0.5) & (y <= 0.1)) | _rrect(
            x, y, -0.6, 0.35, 0.15, 0.3, 0.1) | _rrect(x, y, 0.6, 0.35, 0.15, 0.3, 0.1)
    if shape == "twin_dots":
        return _disc(x, y, -0.4, 0, 0.28) | _disc(x, y, 0.4, 0, 0.28)
    if shape == "circle_in_square":
        return _rect(x, y, 0, 0, 0.6, 0.75) & ~_disc(x, y, 0, 0.1, 0.35) | _disc(x, y, 0, 0.1, 0.15)
    if shape == "ring":
        return (_rrect(x, y, 0, 0.1, 0.8, 0.5, 0.1) & ~_disc(x, y, 0, 0.1, 0.3)) | _rect(x, y, -0.45, -0.5, 0.2, 0.12)
    if shape == "small_square":
        return _rrect(x, y, 0, 0, 0.4, 0.35, 0.05) & ~_disc(x, y, 0.1, 0, 0.15)
    if shape == "wedge":
        return _poly(x, y, [(-0.8, 0.1), (0.2, -0.3), (0.8, 0.2), (0.8, 0.45), (-0.8, 0.45)])
    if shape == "boot":
        return _rect(x, y, -0.25, -0.2, 0.3, 0.55) | _rect(x, y, 0.15, 0.45, 0.65, 0.2)
    if shape == "flat_bar":
        return _rrect(x, y, 0, 0.4, 0.8, 0.12, 0.1) | (_rect(x, y, 0, 0.05, 0.5, 0.08))
    if shape == "cup":
        return _poly(x, y, [(-0.6, -0.5), (0.4, -0.5), (0.3, 0.6), (-0.5, 0.6)]) | (
            _disc(x, y, 0.5, 0, 0.3) & ~_disc(x, y, 0.5, 0, 0.15))
    if shape == "tall_trapezoid":
        return _poly(x, y, [(-0.55, -0.8), (0.55, -0.8), (0.3, 0.5), (-0.3, 0.5)]) | _rect(x, y, 0, 0.7, 0.45, 0.15)
    if shape == "pan":
        return _disc(x, y, -0.25, 0, 0.5) | _rect(x, y, 0.5, 0, 0.35, 0.08)
    if shape == "star":
        a = _poly(x, y, [(0, -0.85), (0.75, 0.55), (-0.75, 0.55)])
        b = _poly(x, y, [(-0.75, -0.3), (0.75, -0.3), (0, 0.95)])
        return a | b
    if shape == "diamond":
        return _poly(x, y, [(0, -0.85), (0.6, 0), (0, 0.85), (-0.6, 0)])
    if shape == "book_lines":
        return _rect(x, y, 0, 0, 0.55, 0.75) & ~(_rect(x, y, 0.05, -0.3, 0.35, 0.05) | _rect(x, y, 0.05, 0, 0.35, 0.05))
    if shape == "column":
        return _rect(x, y, 0, 0, 0.3, 0.6) | _rect(x, y, 0, -0.7, 0.55, 0.1) | _rect(x, y, 0, 0.7, 0.55, 0.1)
    if shape == "triangle":
        return _poly(x, y, [(0, -0.8), (0.85, 0.7), (-0.85, 0.7)]) & ~_poly(x, y, [(0, 0.1), (0.25, 0.7), (-0.25, 0.7)])
    if shape == "rounded_tall":
        return _rrect(x, y, 0, 0.1, 0.5, 0.7, 0.3) | (_disc(x, y, 0, -0.65, 0.2) & ~_disc(x, y, 0, -0.65, 0.1))
    if shape == "wide_rect":
        return _rect(x, y, 0, 0, 0.85, 0.25) | _disc(x, y, 0.85, 0, 0.25)
    if shape == "dumbbell":
        return _rect(x, y, 0, 0, 0.5, 0.08) | _rect(x, y, -0.6, 0, 0.15, 0.45) | _rect(x, y, 0.6, 0, 0.15, 0.45)
    if shape == "half_disc":
        return _disc(x, y, 0, 0.3, 0.75) & (y <= 0.3) & ~_rect(x, y, 0, -0.05, 0.08, 0.3)
    if shape == "lamp":
        return _poly(x, y, [(-0.2, -0.8), (0.2, -0.8), (0.55, -0.3), (-0.55, -0.3)]) | _rect(
            x, y, 0, 0.2, 0.06, 0.5) | _rect(x, y, 0, 0.7, 0.4, 0.08)
    if shape == "checker_block":
        return _rect(x, y, 0, 0, 0.8, 0.55) & ~_rect(x, y, 0, -0.35, 0.8, 0.05)
    if shape == "bottle":
        return _rrect(x, y, 0, 0.25, 0.35, 0.6, 0.15) | _rect(x, y, 0, -0.55, 0.12, 0.25)
    if shape == "flacon":
        return _disc(x, y, 0, 0.25, 0.5) | _rect(x, y, 0, -0.45, 0.15, 0.2) | _rect(x, y, 0, -0.7, 0.3, 0.08)
    raise ValueError(f"unknown shape {shape!r}")


def draw_item(shape: str, rgb, pattern: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Draw one product picture as a ``(size, size, 3)`` uint8 array.

    The item's colour fills the shape; ``pattern`` mixes in a darker shade. Small random shifts, scale and
    background tone (from ``rng``) keep two items of one subcategory and colour from being identical.
    """
    x, y = _grid(size)
    scale = rng.uniform(0.85, 1.05)
    dx, dy = rng.uniform(-0.08, 0.08, size=2)
    xs, ys = (x - dx) / scale, (y - dy) / scale
    mask = shape_mask(shape, xs, ys)

    bg_tone = rng.uniform(225, 245)
    img = np.empty((size, size, 3), dtype=np.float64)
    img[:] = bg_tone + 8 * (y[..., None] * 0.5)  # soft vertical gradient

    base = np.asarray(rgb, dtype=np.float64)
    dark = base * 0.55
    if pattern == "solid":
        mix = np.zeros_like(x)
    elif pattern == "stripes":
        period = rng.uniform(0.18, 0.3)
        mix = ((((xs + ys) / period) % 2) < 1).astype(float)
    elif pattern == "dots":
        period = rng.uniform(0.25, 0.35)
        u, v = (xs / period) % 1 - 0.5, (ys / period) % 1 - 0.5
        mix = (u**2 + v**2 < 0.07).astype(float)
    elif pattern == "checks":
        period = rng.uniform(0.2, 0.3)
        mix = ((np.floor(xs / period) + np.floor(ys / period)) % 2).astype(float)
    elif pattern == "grain":
        mix = np.clip(rng.normal(0.3, 0.25, size=x.shape), 0, 1)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    fill = base[None, None, :] * (1 - mix[..., None]) + dark[None, None, :] * mix[..., None]
    img[mask] = fill[mask]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
