"""Referring phrases over the shapes world: (image, phrase) -> the region the phrase names.

The region of a shape is the dataset's edit region for that shape (its coverage dilated by one pixel), and the
region of "the background" is the background edit's region, so a mask derived from words covers what a drawn
edit mask covers. Negatives (a shape or colour the image does not have) name nothing: their region is empty.
"""
from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tiny-model"))
import shapes_world as world  # noqa: E402

SHAPE_TEMPLATES = ["the {s}", "{s}", "the {c} {s}", "a {s}"]
COLOUR_TEMPLATES = ["the {c} shape", "the {c} one"]
BACKGROUND_PHRASES = ["the background", "background", "the backdrop"]
# Every word a phrase can hold; the tokenizer's vocabulary is exactly this list (anything else is unknown).
VOCABULARY = sorted({"the", "a", "shape", "one", "background", "backdrop"} | set(world.SHAPES) | set(world.COLOUR_NAMES))
KINDS = ["shape", "colour", "background", "negative"]
KIND_WEIGHTS = [0.45, 0.15, 0.2, 0.2]


@dataclasses.dataclass
class Query:
    image: np.ndarray  # uint8 [H, W, 3]
    phrase: str
    region: np.ndarray  # float32 [H, W] in [0, 1]
    kind: str


def shape_region(shape: world.Shape, size: int) -> np.ndarray:
    return world._dilate(world.shape_coverage(shape, size), 1)


def background_region(scene: world.Scene, size: int) -> np.ndarray:
    covered = np.maximum.reduce([world.shape_coverage(s, size) for s in scene.shapes])
    return world._dilate(1.0 - covered, 1)


def random_query(rng: np.random.Generator, size: int = 128, kind: str | None = None) -> Query:
    scene = world.random_scene(rng, size)
    image = world.render(scene, size)
    kind = kind or str(rng.choice(KINDS, p=KIND_WEIGHTS))
    empty = np.zeros((size, size), np.float32)
    if kind == "shape":
        shape = scene.shapes[int(rng.integers(len(scene.shapes)))]
        phrase = str(rng.choice(SHAPE_TEMPLATES)).format(s=shape.kind, c=shape.colour)
        region = shape_region(shape, size)
    elif kind == "colour":
        colour = scene.shapes[int(rng.integers(len(scene.shapes)))].colour
        phrase = str(rng.choice(COLOUR_TEMPLATES)).format(c=colour)
        region = np.maximum.reduce([shape_region(s, size) if s.colour == colour else empty for s in scene.shapes])
    elif kind == "background":
        phrase = str(rng.choice(BACKGROUND_PHRASES))
        region = background_region(scene, size)
    elif kind == "negative":
        present = {s.kind for s in scene.shapes}
        colours = {s.colour for s in scene.shapes}
        absent_shapes = [s for s in world.SHAPES if s not in present]
        choice = rng.integers(3)
        if choice == 0 and absent_shapes:  # a shape the image does not hold
            phrase = "the " + str(rng.choice(absent_shapes))
        elif choice == 1:  # a shape that is there, in a colour it does not have
            shape = scene.shapes[int(rng.integers(len(scene.shapes)))]
            phrase = f"the {rng.choice([c for c in world.COLOUR_NAMES if c != shape.colour])} {shape.kind}"
        else:  # a colour no shape has
            phrase = f"the {rng.choice([c for c in world.COLOUR_NAMES if c not in colours])} shape"
        region = empty
    else:
        raise ValueError(f"unknown kind {kind}")
    return Query(image, phrase, np.clip(region, 0, 1).astype(np.float32), kind)
