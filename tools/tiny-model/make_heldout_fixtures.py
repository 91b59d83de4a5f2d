"""Write held-out shapes-world cases for the TypeScript behaviour tests and benchmarks.

    python tools/tiny-model/make_heldout_fixtures.py --out test/fixtures/heldout
    python tools/tiny-model/make_heldout_fixtures.py --set eval --out test/fixtures/heldout-eval

`--set eval` writes evaluate.py's 240 cases instead (its seed, its order: recolour, background, remove, identity
in turn), so `npm run bench:eval` measures the TypeScript engine on exactly the cases EVAL.md's figures use.

Per case: <id>-source.png, <id>-mask.png (edit region, grayscale), <id>-interior.png (fully covered pixels of
the named shape, or of the background for background edits), <id>-target.png (the intended result) and a line
in cases.json with the instruction, operation and named colour. Uses a seed that neither training (1234) nor EVAL.md (20261124) uses.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
from PIL import Image

import shapes_world as world

SEED = 777001
COUNTS = {"recolour": 24, "background": 8, "remove": 8, "identity": 8}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", choices=["behaviour", "eval"], default="behaviour")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.set == "eval":
        seed = world.EVAL_SEED
        plan = [(world.OPS[k % len(world.OPS)], f"{k:03d}-{world.OPS[k % len(world.OPS)]}") for k in range(240)]
    else:
        seed = SEED
        plan = [(op, f"{op}-{k:02d}") for op, count in COUNTS.items() for k in range(count)]
    rng = np.random.default_rng(seed)
    cases = []
    for op, cid in plan:
        case = world.random_case(rng, 128, op)
        interior = case.interior if op != "background" else case.mask >= 0.999
        Image.fromarray(case.source).save(os.path.join(args.out, f"{cid}-source.png"))
        Image.fromarray((case.mask * 255).round().astype(np.uint8)).save(os.path.join(args.out, f"{cid}-mask.png"))
        Image.fromarray(interior.astype(np.uint8) * 255).save(os.path.join(args.out, f"{cid}-interior.png"))
        Image.fromarray(case.target).save(os.path.join(args.out, f"{cid}-target.png"))
        cases.append({"id": cid, "op": op, "instruction": case.instruction, "shape": case.shape, "colour": case.colour})
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"seed": seed, "palette": world.PALETTE, "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} cases to {args.out}")


if __name__ == "__main__":
    main()
