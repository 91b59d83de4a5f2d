"""Reference for the step around the engine (numpy): where on a large image the model works (context crop),
and how the decoded edit goes back into the source (the paste mask, feathered inwards, widened by spread).

It mirrors server/edit (geometry and compositing) so the parity fixtures can check an image-level edit end to end.
Rounding follows JavaScript's Math.round (half up), which the TypeScript side uses.
"""
from __future__ import annotations

import math

import numpy as np


def js_round(v):
    return np.floor(np.asarray(v, dtype=np.float64) + 0.5)


def mask_bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask > 0)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def fit_to_area(w: int, h: int, native: int, multiple: int) -> tuple[int, int]:
    scale = native / math.sqrt(w * h)
    rnd = lambda v: max(multiple, int(js_round(v * scale / multiple)) * multiple)
    return rnd(w), rnd(h)


def plan_geometry(width: int, height: int, box, native: int, multiple: int) -> dict:
    """The whole image at about the native area, or a context crop around a small mask on a large image."""
    def whole():
        ww, wh = fit_to_area(width, height, native, multiple)
        return {"x": 0, "y": 0, "width": width, "height": height, "workWidth": ww, "workHeight": wh}

    if box is None or width * height <= 2.25 * native * native:
        return whole()
    x0, y0, x1, y1 = box
    cw = min(width, max(native, (x1 - x0) * 2))
    ch = min(height, max(native, (y1 - y0) * 2))
    if cw * ch > 0.6 * width * height:
        return whole()
    cx = int(js_round((x0 + x1) / 2 - cw / 2))
    cy = int(js_round((y0 + y1) / 2 - ch / 2))
    x = min(width - cw, max(0, cx))
    y = min(height - ch, max(0, cy))
    ww, wh = fit_to_area(cw, ch, native, multiple)
    return {"x": x, "y": y, "width": cw, "height": ch, "workWidth": ww, "workHeight": wh}


def resize_mask(mask: np.ndarray, nw: int, nh: int) -> np.ndarray:
    """Bilinear, pixel centres aligned, clamped at the edges (the engine's resizeMask)."""
    h, w = mask.shape
    if (w, h) == (nw, nh):
        return mask
    sy = np.clip((np.arange(nh) + 0.5) * h / nh - 0.5, 0, h - 1)
    sx = np.clip((np.arange(nw) + 0.5) * w / nw - 0.5, 0, w - 1)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    y1, x1 = np.minimum(h - 1, y0 + 1), np.minimum(w - 1, x0 + 1)
    fy, fx = (sy - y0)[:, None], (sx - x0)[None, :]
    m = mask.astype(np.float64)
    top = m[y0][:, x0] * (1 - fx) + m[y0][:, x1] * fx
    bottom = m[y1][:, x0] * (1 - fx) + m[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def feather_mask(mask: np.ndarray, radius: float) -> np.ndarray:
    """Separable Gaussian blur (std radius / 2, cut at ceil(radius)), edges replicated, clamped to [0, 1]."""
    reach = math.ceil(radius)
    sd = radius / 2
    taps = np.array([math.exp(-(d * d) / (2 * sd * sd)) for d in range(reach + 1)])
    taps /= taps[0] + 2 * taps[1:].sum()

    def blur(src: np.ndarray, axis: int) -> np.ndarray:
        n = src.shape[axis]
        out = np.zeros_like(src, dtype=np.float64)
        for d in range(-reach, reach + 1):
            idx = np.clip(np.arange(n) + d, 0, n - 1)
            out += taps[abs(d)] * np.take(src, idx, axis=axis)
        return out

    return np.clip(blur(blur(mask.astype(np.float64), 1), 0), 0, 1)


def paste_mask(union: np.ndarray, latent_union: np.ndarray, spread: float, g: dict) -> np.ndarray:
    """The user's mask feathered inwards by one pixel (exactly 0 wherever it is 0), widened by spread > 0."""
    out = np.minimum(union, feather_mask(union, 1))
    if spread > 0:
        up = resize_mask(latent_union, g["width"], g["height"])
        ys, xs = slice(g["y"], g["y"] + g["height"]), slice(g["x"], g["x"] + g["width"])
        out[ys, xs] = np.maximum(out[ys, xs], up)
    return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [3,H,W] in about [-1, 1] -> uint8 [H,W,3] (the engine's fromModelTensor)."""
    return js_round(np.clip((image + 1) / 2, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def composite_into(source: np.ndarray, edit: np.ndarray, x: int, y: int, mask: np.ndarray) -> np.ndarray:
    """Paste `edit` at (x, y) through `mask` (source-sized, 1 = edit): source bytes copied where it is 0."""
    out = source.copy()
    h, w = edit.shape[:2]
    m = mask[y:y + h, x:x + w, None].astype(np.float64)
    s = source[y:y + h, x:x + w].astype(np.float64)
    e = edit.astype(np.float64)
    blended = np.where(m >= 1, e, js_round(s + (e - s) * m))
    out[y:y + h, x:x + w] = np.where(m <= 0, s, blended).astype(np.uint8)
    return out
