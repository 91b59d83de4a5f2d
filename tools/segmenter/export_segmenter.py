"""Export a tiny-clipseg checkpoint as a folder in transformers' CLIPSeg ONNX layout.

    python tools/segmenter/export_segmenter.py --checkpoint /tmp/seg/tiny-clipseg.pt --out models/tiny-clipseg

The folder: model.onnx (input_ids, pixel_values, attention_mask -> logits [B, S, S]), config.json,
preprocessor_config.json (ViTImageProcessor, as CLIPSeg's, at this model's size), and the tokenizer files at the
top level. The server loads a real CLIPSeg export (e.g. CIDAS/clipseg-rd64-refined, whose model.onnx may sit in
onnx/) the same way.
"""
from __future__ import annotations

import argparse
import os

import torch

import phrases  # noqa: F401  (puts tools/tiny-model on the path)
import nets
from net import IMAGE_MEAN, IMAGE_STD, TinyClipSeg
from train_segmenter import encode, tokenizer

OPSET = 17


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ckpt = torch.load(args.checkpoint, weights_only=False)
    tok = tokenizer()
    assert tok.vocab == ckpt["vocab"], "the checkpoint's vocabulary differs from phrases.VOCABULARY"
    model = TinyClipSeg(len(tok.vocab))
    model.load_state_dict(ckpt["model"])
    model.eval()
    size = ckpt["size"]
    os.makedirs(args.out, exist_ok=True)
    ids, attention = encode(tok, ["the circle", "the red square"])
    torch.onnx.export(
        model, (ids, torch.zeros(2, 3, size, size), attention), os.path.join(args.out, "model.onnx"),
        input_names=["input_ids", "pixel_values", "attention_mask"], output_names=["logits"],
        dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                      "attention_mask": {0: "batch_size", 1: "sequence_length"},
                      "pixel_values": {0: "batch_size", 2: "height", 3: "width"},
                      "logits": {0: "batch_size", 1: "height", 2: "width"}},
        opset_version=OPSET, dynamo=False, do_constant_folding=True)
    nets.write_json(os.path.join(args.out, "config.json"), {
        "_name_or_path": "layerloop/tiny-clipseg", "architectures": ["CLIPSegForImageSegmentation"],
        "model_type": "clipseg", "image_size": size, "vocab_size": len(tok.vocab),
        "layerloop": {"description": "tiny FiLM conv segmenter trained on the shapes world, CLIPSeg's ONNX interface",
                      "vocabulary": sorted(w for w in tok.vocab if not w.startswith("<|")),
                      "training_steps": ckpt["steps"], "training_seconds": ckpt["seconds"]}})
    nets.write_json(os.path.join(args.out, "preprocessor_config.json"), {
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": IMAGE_MEAN, "image_std": IMAGE_STD,
        "image_processor_type": "ViTImageProcessor", "processor_class": "CLIPSegProcessor", "resample": 2,
        "rescale_factor": 1 / 255, "size": {"height": size, "width": size}})
    nets.write_json(os.path.join(args.out, "tokenizer.json"), tok.tokenizer_json())
    nets.write_json(os.path.join(args.out, "tokenizer_config.json"), tok.tokenizer_config_json())
    nets.write_json(os.path.join(args.out, "special_tokens_map.json"),
                    {"bos_token": nets.BOS, "eos_token": nets.EOS, "pad_token": nets.EOS, "unk_token": nets.UNK})
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"exported to {args.out}: {total / 1e6:.2f} MB ({ckpt['steps']} steps)")


if __name__ == "__main__":
    main()
