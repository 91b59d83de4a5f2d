"""Write parity fixtures: the reference loop's final latents for fixed inputs and injected noise, which the
TypeScript engine must reproduce within 1e-3 (test/integration/parity.test.ts).

    python tools/tiny-model/make_parity_fixtures.py --model models/tiny-pix2pix --out test/fixtures/parity

Each case is <name>.json (inputs and options) plus <name>.noise.f32 (all noise draws, in consumption order)
and <name>.expected.f32 (final scaled latent [4,h,w]), little-endian float32.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
from PIL import Image

import reference_pipeline as ref

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "test", "fixtures")

CASES = [
    {"name": "global", "instruction": "make the circle blue", "mask": None, "locality": "both", "strength": 1.0},
    {"name": "masked-both", "instruction": "make the circle blue", "mask": "shapes-128-circle-mask.png", "locality": "both", "strength": 1.0},
    {"name": "masked-guidance", "instruction": "make the circle blue", "mask": "shapes-128-circle-mask.png", "locality": "guidance", "strength": 1.0},
    {"name": "masked-blend", "instruction": "make the circle blue", "mask": "shapes-128-circle-mask.png", "locality": "blend", "strength": 1.0},
    {"name": "strength", "instruction": "make the background pink", "mask": None, "locality": "both", "strength": 0.6},
]
STEPS = 20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    model = ref.Model(args.model)
    image = np.array(Image.open(os.path.join(FIXTURES, "shapes-128.png")).convert("RGB"))
    c = model.encode(image)

    def run(name: str, cond: np.ndarray, case: dict, seed: int) -> np.ndarray:
        mask = None
        if case["mask"]:
            pixel = np.array(Image.open(os.path.join(FIXTURES, case["mask"])).convert("L"), np.float32) / 255
            mask = ref.downsample(pixel, 8)
        noise = ref.seeded_noise(seed, cond.shape, STEPS)
        z0 = ref.edit(model, cond, case["instruction"], noise, steps=STEPS, mask=mask, locality=case["locality"],
                      strength=case["strength"])
        np.concatenate([n.ravel() for n in noise]).astype("<f4").tofile(os.path.join(args.out, f"{name}.noise.f32"))
        z0.astype("<f4").ravel().tofile(os.path.join(args.out, f"{name}.expected.f32"))
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump({**case, "name": name, "steps": STEPS, "textScale": 7.5, "imageScale": 1.5,
                       "sampler": "euler_ancestral", "progressiveShrink": True, "latentShape": list(cond.shape[1:])}, f, indent=2)
        return z0

    for k, case in enumerate(CASES):
        run(case["name"], c, case, 100 + k)
    # latent iteration (EMILIE): the second edit is conditioned on z0_prev / s, no decode/encode in between
    first = run("iterate-1", c, {"instruction": "make the circle blue", "mask": None, "locality": "both", "strength": 1.0}, 200)
    run("iterate-2", first / model.scaling,
        {"instruction": "make the square green", "mask": None, "locality": "both", "strength": 1.0, "continueFrom": "iterate-1"}, 201)
    print(f"wrote {len(CASES) + 2} parity cases to {args.out}")


if __name__ == "__main__":
    main()
