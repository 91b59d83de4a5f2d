"""Shapes world: a procedural instruction-editing dataset.

Each case is (source image, instruction, edited image, edit-region mask) at 128x128 (any size works).
Shapes are drawn from signed distance functions with a one-pixel anti-aliased edge, so the same scene
renders identically before and after an edit everywhere the edit does not touch.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 220, 40),
    "green": (40, 160, 60),
    "cyan": (40, 200, 210),
    "blue": (40, 70, 220),
    "purple": (140, 60, 190),
    "pink": (245, 130, 190),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}
COLOUR_NAMES = list(PALETTE)
SHAPES = ["circle", "square", "triangle", "diamond"]

RECOLOUR_TEMPLATES = ["make the {s} {c}", "turn the {s} {c}", "colour the {s} {c}", "change the {s} to {c}"]
BACKGROUND_TEMPLATES = ["make the background {c}", "turn the background {c}", "change the background to {c}"]
REMOVE_TEMPLATES = ["remove the {s}", "delete the {s}", "erase the {s}"]

# Every word any template can produce; the tokenizer's vocabulary is exactly this list.
VOCABULARY = sorted(
    {w for t in RECOLOUR_TEMPLATES + BACKGROUND_TEMPLATES + REMOVE_TEMPLATES for w in t.split() if "{" not in w}
    | set(COLOUR_NAMES) | set(SHAPES)
)

# evaluate.py's held-out cases (and test/fixtures/heldout-eval); no training run uses this seed
EVAL_SEED = 20261124

OPS = ["recolour", "background", "remove", "identity"]
OP_WEIGHTS = [0.40, 0.20, 0.25, 0.15]
# Training-only operation (never in the held-out sets): a recolour or remove instruction naming a shape the scene
# lacks; the right edit is no edit.
ABSENT = "absent"


@dataclasses.dataclass
class Shape:
    kind: str
    colour: str
    cx: float
    cy: float
    r: float


@dataclasses.dataclass
class Scene:
    background: tuple[str, str, float]  # (colour a, colour b, gradient angle); a == b means flat
    shapes: list[Shape]


@dataclasses.dataclass
class Case:
    source: np.ndarray  # uint8 [H, W, 3]
    target: np.ndarray  # uint8 [H, W, 3]
    mask: np.ndarray  # float32 [H, W] in [0, 1], 1 = the edit may change this pixel
    interior: np.ndarray  # bool [H, W]: fully covered pixels of the named shape (where its colour is measured)
    instruction: str
    op: str
    shape: str | None  # the shape the instruction names
    colour: str | None  # the colour the instruction names


def _signed_distance(shape: Shape, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    dx, dy = xs - shape.cx, ys - shape.cy
    if shape.kind == "circle":
        return np.sqrt(dx * dx + dy * dy) - shape.r
    if shape.kind == "square":
        h = shape.r * 0.85
        qx, qy = np.abs(dx) - h, np.abs(dy) - h
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
        return outside + np.minimum(np.maximum(qx, qy), 0)
    if shape.kind == "diamond":
        return (np.abs(dx) + np.abs(dy) - shape.r) / math.sqrt(2)
    if shape.kind == "triangle":  # equilateral, pointing up; max of three half-plane distances
        r = shape.r
        d = [dy - r * 0.5]
        for angle in (math.radians(210), math.radians(330)):
            nx, ny = math.cos(angle), math.sin(angle)
            d.append(dx * nx + dy * ny - r * 0.5)
        return np.maximum.reduce(d)
    raise ValueError(f"unknown shape {shape.kind}")


def shape_coverage(shape: Shape, size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return np.clip(0.5 - _signed_distance(shape, xs, ys), 0.0, 1.0).astype(np.float32)


def render(scene: Scene, size: int) -> np.ndarray:
    a, b, angle = scene.background
    ca, cb = np.array(PALETTE[a], np.float32), np.array(PALETTE[b], np.float32)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    img = ca * (1 - t) + cb * t
    for shape in scene.shapes:
        cov = shape_coverage(shape, size)[..., None]
        img = img * (1 - cov) + np.array(PALETTE[shape.colour], np.float32) * cov
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def random_scene(rng: np.random.Generator, size: int) -> Scene:
    a = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
    b = a if rng.random() < 0.5 else COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
    background = (a, b, float(rng.uniform(0, 2 * math.pi)))
    n = int(rng.integers(1, 4))
    kinds = list(rng.permutation(SHAPES)[:n])  # distinct kinds so "the circle" is unambiguous
    shapes: list[Shape] = []
    for kind in kinds:
        for _ in range(50):
            r = float(rng.uniform(0.10, 0.20) * size)
            cx, cy = (float(rng.uniform(r + 2, size - r - 2)) for _ in range(2))
            if all(math.hypot(cx - s.cx, cy - s.cy) > r + s.r + 4 for s in shapes):
                taken = {a, b}
                colour = rng.choice([c for c in COLOUR_NAMES if c not in taken])
                shapes.append(Shape(kind, str(colour), cx, cy, r))
                break
    return Scene(background, shapes)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out = np.maximum(out, np.roll(np.roll(mask, dy, 0), dx, 1))
    return out


def _twin(rng: np.random.Generator, scene: Scene, edited: Scene, i: int) -> None:
    """Give another shape the colour of shape i (in both scenes): the instruction's shape name, not its colour,
    must say which one to edit."""
    others = [j for j in range(len(scene.shapes)) if j != i]
    if others:
        j = others[int(rng.integers(len(others)))]
        scene.shapes[j].colour = edited.shapes[j].colour = scene.shapes[i].colour


def random_case(rng: np.random.Generator, size: int = 128, op: str | None = None, twin: bool = False) -> Case:
    """One case. `twin` (recolour and remove): another shape shares the named shape's colour (a hard negative).
    With the defaults, the random draws are those of every earlier version, so the held-out sets do not move."""
    scene = random_scene(rng, size)
    op = op or str(rng.choice(OPS, p=OP_WEIGHTS))
    source = render(scene, size)
    edited = dataclasses.replace(scene, shapes=[dataclasses.replace(s) for s in scene.shapes])
    shape_name = colour = None
    interior = np.zeros((size, size), bool)
    if op == "recolour":
        i = int(rng.integers(len(edited.shapes)))
        if twin:
            _twin(rng, scene, edited, i)
            source = render(scene, size)
        target_shape = edited.shapes[i]
        others = {scene.background[0], scene.background[1], target_shape.colour}
        colour = str(rng.choice([c for c in COLOUR_NAMES if c not in others]))
        target_shape.colour = colour
        shape_name = target_shape.kind
        instruction = str(rng.choice(RECOLOUR_TEMPLATES)).format(s=shape_name, c=colour)
        mask = _dilate(shape_coverage(target_shape, size), 1)
        interior = shape_coverage(target_shape, size) >= 0.999
    elif op == "background":
        shape_colours = {s.colour for s in scene.shapes}
        colour = str(rng.choice([c for c in COLOUR_NAMES if c not in shape_colours and c != scene.background[0]]))
        edited.background = (colour, colour, 0.0)
        instruction = str(rng.choice(BACKGROUND_TEMPLATES)).format(c=colour)
        covered = np.maximum.reduce([shape_coverage(s, size) for s in scene.shapes])
        mask = _dilate(1.0 - covered, 1)
    elif op == "remove":
        i = int(rng.integers(len(edited.shapes)))
        if twin:
            _twin(rng, scene, edited, i)
            source = render(scene, size)
        removed = edited.shapes.pop(i)
        shape_name = removed.kind
        instruction = str(rng.choice(REMOVE_TEMPLATES)).format(s=shape_name)
        mask = _dilate(shape_coverage(removed, size), 1)
        interior = shape_coverage(removed, size) >= 0.999
    elif op == "identity":
        instruction = ""
        mask = np.zeros((size, size), np.float32)
    elif op == ABSENT:
        present = {s.kind for s in scene.shapes}
        missing = [k for k in SHAPES if k not in present]  # scenes hold at most 3 of the 4 kinds
        shape_name = missing[int(rng.integers(len(missing)))]
        if rng.random() < 0.5:
            colour = COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]
            instruction = str(rng.choice(RECOLOUR_TEMPLATES)).format(s=shape_name, c=colour)
        else:
            instruction = str(rng.choice(REMOVE_TEMPLATES)).format(s=shape_name)
        mask = np.zeros((size, size), np.float32)
    else:
        raise ValueError(f"unknown op {op}")
    return Case(source, render(edited, size), mask.astype(np.float32), interior, instruction, op, shape_name, colour)


def nearest_palette_colour(rgb: np.ndarray) -> str:
    names = COLOUR_NAMES
    d = [float(np.sum((np.asarray(rgb, np.float32) - np.array(PALETTE[n], np.float32)) ** 2)) for n in names]
    return names[int(np.argmin(d))]


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if where is not None:
        w = np.broadcast_to(where[..., None] if where.ndim == 2 else where, diff.shape)
        if not w.any():
            return float("inf")
        mse = float(diff[w].mean())
    else:
        mse = float(diff.mean())
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)
