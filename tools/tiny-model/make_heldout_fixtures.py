"""Write held-out shapes-world cases for the TypeScript behaviour tests and benchmarks.

    python tools/tiny-model/make_heldout_fixtures.py --out test/fixtures/heldout
    python tools/tiny-model/make_heldout_fixtures.py --eval-set --out /tmp/eval-cases   # EVAL.md's 240 cases

`--eval-set` writes evaluate.py's held-out cases instead (seed 20261124, 60 per operation in its interleaved
order), in the same layout, for `npm run bench:eval` (EVAL.md measured through the TypeScript engine).

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
    ap.add_argument("--eval-set", action="store_true", help="evaluate.py's 240 held-out cases (seed 20261124)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.eval_set:
        from evaluate import HELD_OUT_SEED
        seed = HELD_OUT_SEED
        per_op = 240 // len(world.OPS)
        order = [(world.OPS[k % len(world.OPS)], k // len(world.OPS)) for k in range(per_op * len(world.OPS))]
    else:
        seed = SEED
        order = [(op, k) for op, count in COUNTS.items() for k in range(count)]
    rng = np.random.default_rng(seed)
    cases = []
    for op, k in order:
        case = world.random_case(rng, 128, op)
        cid = f"{op}-{k:02d}"
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
