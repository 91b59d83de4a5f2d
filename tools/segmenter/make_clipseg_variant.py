"""A randomly initialised transformers CLIPSegForImageSegmentation, exported to ONNX in the layout the server loads.

    python tools/segmenter/make_clipseg_variant.py --out test/fixtures/clipseg-variant

The real architecture (CLIP ViT + text towers, FiLM, the transposed-conv decoder), shrunk to a few thousand
parameters per layer, with tiny-clipseg's tokenizer files: it checks that an export of transformers' own CLIPSeg code
(its input and output names and shapes, logits [B, H, W]) runs through server/engine/segmenter.ts exactly as through
onnxruntime in Python. Writes the folder, plus reference logits for shapes-320x224.png and "the circle".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, PreTrainedTokenizerFast
from transformers import ViTImageProcessorPil as ViTImageProcessor

SIZE = 64


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer-from", default="models/tiny-clipseg")
    args = ap.parse_args()
    torch.manual_seed(0)
    tok = PreTrainedTokenizerFast.from_pretrained(args.tokenizer_from)
    vocab = len(tok.get_vocab())
    config = CLIPSegConfig(
        text_config={"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 77,
                     "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": SIZE, "patch_size": 16},
        projection_dim=32, extract_layers=[0, 1], reduce_dim=16, decoder_num_attention_heads=2,
        decoder_intermediate_size=32)
    model = CLIPSegForImageSegmentation(config).eval()
    os.makedirs(args.out, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(args.tokenizer_from, name), os.path.join(args.out, name))
    config.save_pretrained(args.out)
    processor = ViTImageProcessor(do_resize=True, size={"height": SIZE, "width": SIZE}, resample=2,
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    processor.save_pretrained(args.out)

    class Logits(torch.nn.Module):  # the export keeps only `logits`, under CLIPSeg's input names
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, pixel_values, attention_mask):
            return self.m(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask).logits

    enc = tok(["the circle"], return_tensors="pt")
    pixels = processor(images=[Image.open("test/fixtures/shapes-320x224.png").convert("RGB")], return_tensors="pt")["pixel_values"]
    os.makedirs(os.path.join(args.out, "onnx"), exist_ok=True)
    torch.onnx.export(Logits(model), (enc["input_ids"], pixels, enc["attention_mask"]), os.path.join(args.out, "onnx", "model.onnx"),
                      input_names=["input_ids", "pixel_values", "attention_mask"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                                    "attention_mask": {0: "batch_size", 1: "sequence_length"},
                                    "pixel_values": {0: "batch_size"}, "logits": {0: "batch_size"}},
                      opset_version=17, dynamo=False)
    session = ort.InferenceSession(os.path.join(args.out, "onnx", "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input_ids": enc["input_ids"].numpy(), "attention_mask": enc["attention_mask"].numpy(),
                                      "pixel_values": pixels.numpy()})[0]
    with torch.no_grad():
        torch_logits = model(**enc, pixel_values=pixels).logits.numpy()
    print("logits", logits.shape, "onnx vs torch max diff", float(np.abs(logits - torch_logits).max()))
    logits[0].astype("<f4").tofile(os.path.join(args.out, "reference-logits.f32"))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"image": "test/fixtures/shapes-320x224.png", "phrase": "the circle", "logits": list(logits.shape)}, f)
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(args.out) for n in ns)
    print(f"wrote {args.out}: {total / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
