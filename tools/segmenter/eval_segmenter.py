"""Held-out evaluation of a CLIPSeg-interface segmenter folder on shapes-world phrases, through onnxruntime.

    python tools/segmenter/eval_segmenter.py --model models/tiny-clipseg --out models/tiny-clipseg/EVAL.md

Preprocessing and tokenizing go through transformers' own classes read from the folder (ViTImageProcessor,
PreTrainedTokenizerFast), so the figures hold for the files as shipped. A phrase's mask is sigmoid(logits) >= 0.5;
IoU is measured against the region (>= 0.5) on phrases naming something present; phrases naming nothing
(negatives) count as right when the mask comes out empty by the server's rule (under 0.2 % of the pixels).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort
from transformers import PreTrainedTokenizerFast, ViTImageProcessorPil as ViTImageProcessor

import phrases

SEED = 20261207  # neither training (2718) nor any other fixture uses it
CASES = 600
EMPTY_FRACTION = 0.002
NOTES_MARKER = "<!-- notes: kept by eval_segmenter.py -->"  # server/engine/segmenter.ts: a mask with fewer pixels >= 0.5 than this names nothing


def run(session, processor, tok, images: list[np.ndarray], texts: list[str]) -> np.ndarray:
    pixels = processor(images=images, return_tensors="np")["pixel_values"].astype(np.float32)
    enc = tok(texts, padding=True, return_tensors="np")
    feeds = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64),
             "pixel_values": pixels}
    return session.run(["logits"], feeds)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out")
    ap.add_argument("--command", default="")
    ap.add_argument("--bench", help="the JSON `npm run bench:masks` printed: adds the edits table")
    args = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(f"{args.model}/model.onnx", opts, providers=["CPUExecutionProvider"])
    processor = ViTImageProcessor.from_pretrained(args.model)
    tok = PreTrainedTokenizerFast.from_pretrained(args.model)
    rng = np.random.default_rng(SEED)
    start = time.time()
    per_kind: dict[str, list[float]] = {k: [] for k in phrases.KINDS}
    for _ in range(CASES // 20):
        batch = [phrases.random_query(rng, 128) for _ in range(20)]
        logits = run(session, processor, tok, [q.image for q in batch], [q.phrase for q in batch])
        for q, lg in zip(batch, logits):
            pred = lg >= 0.0  # sigmoid >= 0.5
            truth = q.region >= 0.5
            if q.kind == "negative":
                per_kind[q.kind].append(float(pred.mean() < EMPTY_FRACTION))
            else:
                per_kind[q.kind].append(float((pred & truth).sum() / max((pred | truth).sum(), 1)))
    positives = [v for k in ("shape", "colour", "background") for v in per_kind[k]]
    figures = {
        "cases": CASES, "seed": SEED, "positive_cases": len(positives),
        "mean_iou": float(np.mean(positives)),
        "iou_shape": float(np.mean(per_kind["shape"])), "iou_colour": float(np.mean(per_kind["colour"])),
        "iou_background": float(np.mean(per_kind["background"])),
        "positives_iou_over_0_8": float(np.mean(np.array(positives) >= 0.8)),
        "negative_cases": len(per_kind["negative"]), "negatives_empty": float(np.mean(per_kind["negative"])),
        "seconds": round(time.time() - start, 1),
    }
    print(json.dumps(figures, indent=1))
    if args.out:
        bench = json.load(open(args.bench)) if args.bench else None
        write_report(args.out, figures, args.model, args.command, bench)


def bench_section(b: dict) -> str:
    rows = "\n".join(
        f"| {op} | {v['edits']} | {v['drawnMaskSuccessPct']:.1f} % | {v['maskTextSuccessPct']:.1f} % | {v['meanIou']:.3f} | {v['emptyMasks']} |"
        for op, v in b["perOp"].items())
    met = "yes" if b["withinFivePoints"] else "NO"
    return f"""
## Edits with words vs drawn masks (through the TypeScript engine)

Every held-out recolour, background and remove case of `test/fixtures/heldout` ({b['cases']} cases x {b['seedsPerCase']} seeds,
{b['steps']} steps), edited with its drawn mask and with the mask from words naming the same region ("the circle",
"the background"), same seed. Mask from words: {b['maskFromWords']}. Command: `npm run bench:masks -- --seeds {b['seedsPerCase']}`.

| target | drawn mask | words | goal | met |
|---|---|---|---|---|
| success rate, all {b['edits']} edits | {b['drawnMaskSuccessPct']:.1f} % | {b['maskTextSuccessPct']:.1f} % | words within 5 points | {met} ({b['differencePoints']:+.1f}) |

| operation | edits | drawn mask | words | IoU words vs drawn | empty (400) |
|---|---|---|---|---|---|
{rows}
"""


def write_report(path: str, f: dict, model: str, command: str, bench: dict | None = None) -> None:
    size = sum(os.path.getsize(os.path.join(model, n)) for n in os.listdir(model) if n != "EVAL.md")
    config = json.load(open(os.path.join(model, "config.json")))["layerloop"]
    text = f"""# tiny-clipseg evaluation

A text-conditioned segmenter with CLIPSeg's ONNX interface (`input_ids`, `pixel_values`, `attention_mask` ->
`logits`), trained on shapes-world referring phrases ("the circle", "the red square", "the blue shape",
"the background", ...). It is what `layerloop serve` uses to turn a region's `maskText` into a mask unless
`--segmenter DIR` names another folder (a real CLIPSeg export drops in). Folder size {size / 1e6:.2f} MB;
{config['training_steps']} training steps in {config['training_seconds'] / 60:.0f} minutes on one CPU thread.

Held-out: {f['cases']} phrases on fresh scenes (seed {f['seed']}): {f['positive_cases']} naming something present
(a shape, the shapes of a colour, the background) and {f['negative_cases']} naming something absent (a shape or
colour the image lacks), through onnxruntime with transformers' ViTImageProcessor and tokenizer read from the folder.

| target | measured | goal | met |
|---|---|---|---|
| mean IoU, phrases naming something present | {f['mean_iou']:.3f} | >= 0.8 | {'yes' if f['mean_iou'] >= 0.8 else 'NO'} |

| further figures | measured |
|---|---|
| IoU, a shape ("the circle", "the red circle", "circle") | {f['iou_shape']:.3f} |
| IoU, the shapes of a colour ("the red shape") | {f['iou_colour']:.3f} |
| IoU, the background | {f['iou_background']:.3f} |
| phrases naming something present with IoU >= 0.8 | {100 * f['positives_iou_over_0_8']:.1f} % |
| phrases naming something absent whose mask comes out empty (the server answers 400) | {100 * f['negatives_empty']:.1f} % |

Commands:

```bash
{command}
```

Raw figures:

```json
{json.dumps(f, indent=1)}
```
""" + (bench_section(bench) if bench else "")
    # hand-written notes below the marker survive a re-run
    if os.path.exists(path):
        old = open(path).read()
        if NOTES_MARKER in old:
            text = text.rstrip() + "\n\n" + old[old.index(NOTES_MARKER):]
    with open(path, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
