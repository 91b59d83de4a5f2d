"""Reference outputs of a segmenter folder for the TypeScript parity test (test/unit/engine/segmenter.test.ts).

    python tools/segmenter/make_segmenter_fixtures.py --model models/tiny-clipseg --out test/fixtures/segmenter

transformers' own ViTImageProcessor and tokenizer (read from the folder), onnxruntime, then torch's bilinear resize
of the logits to the image's size (align_corners=False) and a sigmoid: what server/engine/segmenter.ts does.
Writes <case>-logits.f32 (model size, float32), <case>-mask.f16 (image size, float16), the PIL-resized input
(resized-320x224.png: the preprocessing's resize alone) and cases.json.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import PreTrainedTokenizerFast, ViTImageProcessorPil as ViTImageProcessor

CASES = [
    ("circle-128", "test/fixtures/shapes-128.png", "the circle"),
    ("red-circle-320x224", "test/fixtures/shapes-320x224.png", "the red circle"),
    ("background-320x224", "test/fixtures/shapes-320x224.png", "the background"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    session = ort.InferenceSession(f"{args.model}/model.onnx", providers=["CPUExecutionProvider"])
    processor = ViTImageProcessor.from_pretrained(args.model)
    tok = PreTrainedTokenizerFast.from_pretrained(args.model)
    size = processor.size["height"], processor.size["width"]
    wide = Image.open("test/fixtures/shapes-320x224.png").convert("RGB")
    wide.resize((size[1], size[0]), Image.BILINEAR).save(os.path.join(args.out, "resized-320x224.png"))
    out = []
    for name, path, phrase in CASES:
        image = Image.open(path).convert("RGB")
        pixels = processor(images=[image], return_tensors="np")["pixel_values"].astype(np.float32)
        enc = tok([phrase], return_tensors="np")
        logits = session.run(["logits"], {"input_ids": enc["input_ids"].astype(np.int64),
                                          "attention_mask": enc["attention_mask"].astype(np.int64),
                                          "pixel_values": pixels})[0]
        resized = F.interpolate(torch.from_numpy(logits)[:, None], size=(image.height, image.width), mode="bilinear",
                                align_corners=False)[0, 0]
        mask = torch.sigmoid(resized).numpy()
        logits[0].astype("<f4").tofile(os.path.join(args.out, f"{name}-logits.f32"))
        mask.astype("<f2").tofile(os.path.join(args.out, f"{name}-mask.f16"))
        out.append({"name": name, "image": path, "phrase": phrase, "logits": list(logits.shape[1:]),
                    "mask": [image.height, image.width], "maskPixelsOn": int((mask >= 0.5).sum())})
        print(name, phrase, "pixels >= 0.5:", int((mask >= 0.5).sum()))
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"model": args.model, "cases": out}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
