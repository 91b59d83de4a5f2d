"""Write parity fixtures: the reference loop's final latents and composited images for fixed inputs and injected
noise, which the TypeScript engine must reproduce (test/integration/parity.test.ts).

    PYTHONPATH=/path/to/diffusers/src python tools/tiny-model/make_parity_fixtures.py \
        --model models/tiny-pix2pix --out test/fixtures/parity

Each case is <name>.json (inputs, options, the expected working geometry), <name>.noise.f32 (all noise draws, in
consumption order), <name>.expected.f32 (final scaled latent [4,h,w], little-endian float32) and
<name>.expected.png (the edit composited into the source). Masks the cases use are written beside them.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
from PIL import Image

import reference_compose as compose
import reference_pipeline as ref

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "test", "fixtures")
CIRCLE = "../shapes-128-circle-mask.png"  # relative to the parity folder
SQUARE = "shapes-128-square-mask.png"
DIAMOND = "shapes-320x224-diamond-mask.png"

BLUE_CIRCLE = {"instruction": "make the circle blue", "mask": CIRCLE}
GREEN_SQUARE = {"instruction": "make the square green", "mask": SQUARE}

# name, image, regions, options (defaults: 20 Euler ancestral steps, 7.5 / 1.5, both, spread 0, strength 1, shrinking)
CASES = [
    ("global", "shapes-128.png", [{"instruction": "make the circle blue", "mask": None}], {}),
    ("masked-both", "shapes-128.png", [BLUE_CIRCLE], {}),
    ("masked-guidance", "shapes-128.png", [BLUE_CIRCLE], {"locality": "guidance"}),
    ("masked-blend", "shapes-128.png", [BLUE_CIRCLE], {"locality": "blend"}),
    ("blend-no-shrink", "shapes-128.png", [BLUE_CIRCLE], {"locality": "blend", "progressive": False}),
    ("strength", "shapes-128.png", [{"instruction": "make the background pink", "mask": None}], {"strength": 0.6}),
    ("spread", "shapes-128.png", [BLUE_CIRCLE], {"spread": 0.3}),
    ("two-regions", "shapes-128.png", [BLUE_CIRCLE, GREEN_SQUARE], {}),
    ("two-regions-blend", "shapes-128.png", [BLUE_CIRCLE, GREEN_SQUARE], {"locality": "blend", "sampler": "euler", "progressive": False}),
    ("euler-global", "shapes-128.png", [{"instruction": "make the square red", "mask": None}], {"sampler": "euler"}),
    ("euler-masked-strength", "shapes-128.png", [BLUE_CIRCLE], {"sampler": "euler", "strength": 0.7, "spread": 0.1}),
    ("ddim-global", "shapes-128.png", [{"instruction": "make the circle green", "mask": None}], {"sampler": "ddim"}),
    ("ddim-masked-blend-strength", "shapes-128.png", [BLUE_CIRCLE], {"sampler": "ddim", "locality": "blend", "strength": 0.5}),
    ("large-crop", "shapes-320x224.png", [{"instruction": "make the diamond green", "mask": DIAMOND}], {}),
    ("large-crop-spread", "shapes-320x224.png", [{"instruction": "make the diamond yellow", "mask": DIAMOND}], {"sampler": "euler", "spread": 0.2, "locality": "blend"}),
]
NATIVE = 128  # models/tiny-pix2pix model_index.json native_size
MULTIPLE = 32  # VAE 8x, two UNet downsamplings
FACTOR = 8


def write_masks(out: str) -> None:
    """The square of shapes-128.png and the diamond of shapes-320x224.png, with a margin, as 0/255 PNGs."""
    y, x = np.mgrid[0:128, 0:128] + 0.5
    square = (np.abs(x - 92) <= 15.5) & (np.abs(y - 84) <= 15.5)
    Image.fromarray((square * 255).astype(np.uint8)).save(os.path.join(out, SQUARE))
    y, x = np.mgrid[0:224, 0:320] + 0.5
    diamond = np.abs(x - 150) + np.abs(y - 170) <= 31.5  # a 64x64 box: the context crop needs no resampling
    Image.fromarray((diamond * 255).astype(np.uint8)).save(os.path.join(out, DIAMOND))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    write_masks(args.out)
    model = ref.Model(args.model)
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def run(name: str, image_file: str, regions: list[dict], overrides: dict, seed: int, continue_from: str | None = None) -> None:
        o = ref.Options(**overrides)
        if continue_from:  # latent iteration (EMILIE): conditioned on z0_prev / s, the previous result as the source
            latent, source = results[continue_from]
        else:
            source = np.array(Image.open(os.path.join(FIXTURES, image_file)).convert("RGB"))
        H, W = source.shape[:2]
        pixel_masks = [None if r["mask"] is None else
                       np.array(Image.open(os.path.join(args.out, r["mask"])).convert("L"), np.float32) / 255 for r in regions]
        union = None if any(m is None for m in pixel_masks) else np.max(np.stack(pixel_masks), axis=0)
        g = compose.plan_geometry(W, H, None if union is None else compose.mask_bounds(union), NATIVE, MULTIPLE)
        assert (g["width"], g["height"]) == (g["workWidth"], g["workHeight"]), f"{name}: the reference does not resample"
        ys, xs = slice(g["y"], g["y"] + g["height"]), slice(g["x"], g["x"] + g["width"])
        latent_masks = [None if m is None else ref.downsample(m[ys, xs], FACTOR) for m in pixel_masks]
        c = latent / model.scaling if continue_from else model.encode(source[ys, xs])

        noise = ref.seeded_noise(seed, c.shape, ref.draws_needed(o))
        z0 = ref.edit(model, c, [ref.Region(r["instruction"], m) for r, m in zip(regions, latent_masks)], noise, o)
        decoded = compose.to_uint8(model.decode_float(z0 / model.scaling))
        if union is None:
            paste = np.zeros((H, W))
            paste[ys, xs] = 1
        else:
            latent_union = np.max(np.stack([ref.spread_mask(m, o.spread) for m in latent_masks]), axis=0)
            paste = compose.paste_mask(union, latent_union, o.spread, g)
        result = compose.composite_into(source, decoded, g["x"], g["y"], paste)
        results[name] = (z0, result)

        np.concatenate([n.ravel() for n in noise]).astype("<f4").tofile(os.path.join(args.out, f"{name}.noise.f32"))
        z0.astype("<f4").ravel().tofile(os.path.join(args.out, f"{name}.expected.f32"))
        Image.fromarray(result).save(os.path.join(args.out, f"{name}.expected.png"))
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump({
                "name": name, "image": image_file, "regions": regions, "continueFrom": continue_from,
                "steps": o.steps, "sampler": o.sampler, "textScale": o.text_scale, "imageScale": o.image_scale,
                "locality": o.locality, "spread": o.spread, "strength": o.strength, "progressiveShrink": o.progressive,
                "geometry": g, "latentShape": list(c.shape[1:]),
            }, f, indent=2)

    for k, (name, image, regions, overrides) in enumerate(CASES):
        run(name, image, regions, overrides, 100 + k)
    run("iterate-1", "shapes-128.png", [{"instruction": "make the circle blue", "mask": None}], {}, 200)
    run("iterate-2", "shapes-128.png", [{"instruction": "make the square green", "mask": None}], {}, 201, continue_from="iterate-1")
    print(f"wrote {len(CASES) + 2} parity cases to {args.out}")


if __name__ == "__main__":
    main()
