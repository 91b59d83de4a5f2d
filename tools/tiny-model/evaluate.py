"""Evaluate an exported tiny-pix2pix folder on held-out shapes-world cases, through the ONNX files.

    python tools/tiny-model/evaluate.py --model models/tiny-pix2pix --cases 240 --out models/tiny-pix2pix/EVAL.md

Global edits (no mask), 20 Euler ancestral steps, text guidance 7.5, image guidance 1.5. The held-out set
uses a seed the training data never used.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

import reference_pipeline as ref
import shapes_world as world

HELD_OUT_SEED = world.EVAL_SEED  # training used 1234, 4321 and 5151; scenes are continuous-valued so no case repeats
NOTES_MARKER = "<!-- notes: kept by evaluate.py -->"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--cases", type=int, default=240)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--text-scale", type=float, default=7.5)
    ap.add_argument("--image-scale", type=float, default=1.5)
    ap.add_argument("--out", default=None)
    ap.add_argument("--samples", default=None, help="write a PNG grid of the first cases here")
    args = ap.parse_args()

    model = ref.Model(args.model)
    rng = np.random.default_rng(HELD_OUT_SEED)
    per_op = args.cases // len(world.OPS)
    rows: dict[str, list[dict]] = {op: [] for op in world.OPS}
    vae_psnr = []
    grid = []
    started = time.time()
    for k in range(per_op * len(world.OPS)):
        op = world.OPS[k % len(world.OPS)]
        case = world.random_case(rng, 128, op)
        c = model.encode(case.source)
        vae_psnr.append(world.psnr(model.decode(c), case.source))
        o = ref.Options(steps=args.steps, text_scale=args.text_scale, image_scale=args.image_scale)
        z0 = ref.edit(model, c, [ref.Region(case.instruction, None)], ref.seeded_noise(k, c.shape, ref.draws_needed(o)), o)
        out = model.decode(z0 / model.scaling)
        outside = case.mask <= 0
        r = {"psnr_input": world.psnr(out, case.source),
             "psnr_outside": world.psnr(out, case.source, outside),
             "psnr_target_inside": world.psnr(out, case.target, case.mask > 0.5) if op != "identity" else None}
        if op == "recolour":
            r["success"] = world.nearest_palette_colour(out[case.interior].mean(axis=0)) == case.colour
        elif op == "background":
            bg = case.mask >= 0.999
            r["success"] = world.nearest_palette_colour(out[bg].mean(axis=0)) == case.colour
        elif op == "remove":
            # success: the removed shape's interior no longer has its colour (nearest palette colour changed)
            before = world.nearest_palette_colour(case.source[case.interior].mean(axis=0))
            r["success"] = world.nearest_palette_colour(out[case.interior].mean(axis=0)) != before
        rows[op].append(r)
        if args.samples and len(grid) < 12:
            grid.append(np.concatenate([case.source, case.target, out], axis=0))
    seconds = time.time() - started

    def mean(op: str, key: str) -> float:
        vals = [r[key] for r in rows[op] if r.get(key) is not None and math.isfinite(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    def rate(op: str) -> float:
        return float(np.mean([r["success"] for r in rows[op]]))

    summary = {
        "cases": per_op * len(world.OPS),
        "vae_roundtrip_psnr": float(np.mean(vae_psnr)),
        "identity_psnr": mean("identity", "psnr_input"),
        "recolour_success": rate("recolour"),
        "recolour_outside_psnr": mean("recolour", "psnr_outside"),
        "recolour_target_psnr_inside": mean("recolour", "psnr_target_inside"),
        "background_success": rate("background"),
        "background_outside_psnr": mean("background", "psnr_outside"),
        "remove_success": rate("remove"),
        "remove_outside_psnr": mean("remove", "psnr_outside"),
        "remove_target_psnr_inside": mean("remove", "psnr_target_inside"),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(summary, indent=2))
    if args.samples:
        from PIL import Image
        Image.fromarray(np.concatenate(grid, axis=1)).save(args.samples)
    if args.out:
        # issue 18's goals (the foundation issue's were 24 dB, 80 %, 22 dB and 28 dB)
        targets = [
            ("VAE round trip (PSNR)", f"{summary['vae_roundtrip_psnr']:.2f} dB", ">= 33 dB", summary["vae_roundtrip_psnr"] >= 33),
            ("Empty instruction reproduces the input (PSNR)", f"{summary['identity_psnr']:.2f} dB", ">= 30 dB", summary["identity_psnr"] >= 30),
            ("Recolour: shape's colour nearest to the named one", f"{100 * summary['recolour_success']:.1f} %", ">= 85 %", summary["recolour_success"] >= 0.85),
            ("Recolour: PSNR outside the edited shape", f"{summary['recolour_outside_psnr']:.2f} dB", ">= 24 dB", summary["recolour_outside_psnr"] >= 24),
            ("Background recolour: background colour nearest to the named one", f"{100 * summary['background_success']:.1f} %", ">= 90 %", summary["background_success"] >= 0.9),
            ("Background recolour: PSNR of the shapes (outside the edit)", f"{summary['background_outside_psnr']:.2f} dB", ">= 24 dB", summary["background_outside_psnr"] >= 24),
            ("Remove: the shape's colour is gone from its area", f"{100 * summary['remove_success']:.1f} %", ">= 80 %", summary["remove_success"] >= 0.8),
            ("Remove: PSNR outside the removed shape", f"{summary['remove_outside_psnr']:.2f} dB", ">= 24 dB", summary["remove_outside_psnr"] >= 24),
        ]
        extra = [
            ("Recolour: PSNR to the target inside the shape", f"{summary['recolour_target_psnr_inside']:.2f} dB"),
            ("Remove: PSNR to the target inside the removed area", f"{summary['remove_target_psnr_inside']:.2f} dB"),
        ]
        # hand-written notes below the marker survive a re-run
        notes = ""
        if os.path.exists(args.out):
            with open(args.out) as f:
                old = f.read()
            if NOTES_MARKER in old:
                notes = old[old.index(NOTES_MARKER):]
        with open(args.out, "w") as f:
            f.write("# tiny-pix2pix evaluation\n\n")
            f.write(f"Held-out shapes-world cases: {summary['cases']} ({per_op} per operation: recolour, background, remove, "
                    f"empty instruction), generated with seed {HELD_OUT_SEED}, which no training run uses. Global edits (no mask), "
                    f"run through the exported ONNX files with onnxruntime (CPU): {args.steps} Euler ancestral steps, text "
                    f"guidance {args.text_scale}, image guidance {args.image_scale}, seeded noise per case. "
                    f"Took {summary['seconds']} s on a 2-core machine.\n\n")
            f.write("Command: `python tools/tiny-model/evaluate.py --model models/tiny-pix2pix --out models/tiny-pix2pix/EVAL.md`\n\n")
            f.write("| target | measured | goal | met |\n|---|---|---|---|\n")
            for name, value, goal, ok in targets:
                f.write(f"| {name} | {value} | {goal} | {'yes' if ok else 'NO'} |\n")
            f.write("\n| further figures | measured |\n|---|---|\n")
            for name, value in extra:
                f.write(f"| {name} | {value} |\n")
            f.write("\nRaw figures:\n\n```json\n" + json.dumps(summary, indent=2) + "\n```\n")
            if notes:
                f.write("\n" + notes)


if __name__ == "__main__":
    main()
