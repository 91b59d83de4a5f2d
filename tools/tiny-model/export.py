"""Export a tiny-pix2pix checkpoint to the diffusers/optimum ONNX folder layout.

    python tools/tiny-model/export.py --checkpoint /tmp/tiny-work/tiny-pix2pix.pt --out models/tiny-pix2pix

Interface (the real InstructPix2Pix contract, engine.md section 2):
  text_encoder/model.onnx  input_ids int64 [batch, sequence] -> last_hidden_state [batch, sequence, 64], pooler_output
  unet/model.onnx          sample [batch, 8, h, w], timestep float [steps], encoder_hidden_states -> out_sample [batch, 4, h, w]
  vae_encoder/model.onnx   sample [batch, 3, H, W] -> latent_parameters [batch, 8, H/8, W/8] (mean || logvar)
  vae_decoder/model.onnx   latent_sample [batch, 4, h, w] -> sample [batch, 3, 8h, 8w]
"""
from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
import torch
from torch import nn

import nets
import shapes_world as world

OPSET = 17


class TextEncoderExport(nn.Module):
    def __init__(self, text: nets.TextEncoder, eos_id: int):
        super().__init__()
        self.text, self.eos_id = text, eos_id

    def forward(self, input_ids: torch.Tensor):
        hidden = self.text(input_ids)
        first_eos = (input_ids == self.eos_id).to(torch.int32).argmax(dim=1)
        pooled = hidden[torch.arange(hidden.shape[0]), first_eos]
        return hidden, pooled


class EncoderExport(nn.Module):
    def __init__(self, enc: nets.Encoder):
        super().__init__()
        self.enc = enc

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        params = self.enc(sample)
        return torch.cat([params[:, :4], params[:, 4:].clamp(-30.0, 20.0)], dim=1)


def export(module: nn.Module, args: tuple, path: str, inputs: list[str], outputs: list[str], axes: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      opset_version=OPSET, dynamo=False, do_constant_folding=True)


def fit_latent_to_rgb(enc: nets.Encoder, size: int) -> list[list[float]]:
    """Least-squares map from an unscaled latent pixel (4 channels + 1) to the mean RGB of its 8x8 patch,
    in [-1, 1]: the engine's cheap preview of the predicted x0."""
    rng = np.random.default_rng(99)
    images = np.stack([world.random_case(rng, size).source for _ in range(256)])
    with torch.no_grad():
        lat = enc(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1)[:, :4]
    x = lat.permute(0, 2, 3, 1).reshape(-1, 4).numpy()
    x = np.concatenate([x, np.ones((x.shape[0], 1), np.float32)], axis=1)
    pooled = images.reshape(len(images), size // 8, 8, size // 8, 8, 3).mean(axis=(2, 4)) / 127.5 - 1
    coeffs, *_ = np.linalg.lstsq(x, pooled.reshape(-1, 3), rcond=None)
    return coeffs.T.round(6).tolist()  # [3 rgb][5 = 4 latent channels + bias]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ckpt = torch.load(args.checkpoint, weights_only=False)
    size, scaling = ckpt["size"], ckpt["scaling_factor"]
    tokenizer = nets.WordTokenizer([])
    tokenizer.vocab = ckpt["vocab"]
    enc, dec, unet, text = nets.networks_from_checkpoint(ckpt)

    out = args.out
    if os.path.exists(out):
        for sub in ("text_encoder", "unet", "vae_encoder", "vae_decoder", "tokenizer", "scheduler"):
            shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    lat = size // 8
    ids = tokenizer.batch(["make the circle blue", ""])
    hidden = text(ids)

    export(TextEncoderExport(text, tokenizer.vocab[nets.EOS]), (ids,), f"{out}/text_encoder/model.onnx",
           ["input_ids"], ["last_hidden_state", "pooler_output"],
           {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "last_hidden_state": {0: "batch_size", 1: "sequence_length"}, "pooler_output": {0: "batch_size"}})
    export(unet, (torch.randn(2, 8, lat, lat), torch.tensor([999.0, 999.0]), hidden), f"{out}/unet/model.onnx",
           ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {0: "batch_size", 2: "height", 3: "width"}, "timestep": {0: "steps"},
            "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
            "out_sample": {0: "batch_size", 2: "height", 3: "width"}})
    export(EncoderExport(enc), (torch.randn(1, 3, size, size),), f"{out}/vae_encoder/model.onnx",
           ["sample"], ["latent_parameters"],
           {"sample": {0: "batch_size", 2: "height", 3: "width"},
            "latent_parameters": {0: "batch_size", 2: "latent_height", 3: "latent_width"}})
    export(dec, (torch.randn(1, 4, lat, lat),), f"{out}/vae_decoder/model.onnx", ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch_size", 2: "latent_height", 3: "latent_width"},
            "sample": {0: "batch_size", 2: "height", 3: "width"}})

    vae_config = {"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 4,
                  "block_out_channels": [16, 32, 64, 96], "scaling_factor": round(scaling, 6), "sample_size": size,
                  "latent_to_rgb": fit_latent_to_rgb(enc, size)}
    nets.write_json(f"{out}/vae_encoder/config.json", vae_config)
    nets.write_json(f"{out}/vae_decoder/config.json", vae_config)
    nets.write_json(f"{out}/unet/config.json", {
        "_class_name": "UNet2DConditionModel", "in_channels": 8, "out_channels": 4, "sample_size": lat,
        "cross_attention_dim": 64, "block_out_channels": list(unet.ch), "prediction_type": "epsilon"})
    nets.write_json(f"{out}/text_encoder/config.json", {
        "_class_name": "CLIPTextModel", "hidden_size": 64, "num_hidden_layers": len(text.layers),
        "max_position_embeddings": nets.MAX_LENGTH, "vocab_size": len(tokenizer.vocab),
        "bos_token_id": tokenizer.vocab[nets.BOS], "eos_token_id": tokenizer.vocab[nets.EOS]})
    os.makedirs(f"{out}/tokenizer", exist_ok=True)
    nets.write_json(f"{out}/tokenizer/tokenizer.json", tokenizer.tokenizer_json())
    nets.write_json(f"{out}/tokenizer/tokenizer_config.json", tokenizer.tokenizer_config_json())
    nets.write_json(f"{out}/tokenizer/special_tokens_map.json",
                    {"bos_token": nets.BOS, "eos_token": nets.EOS, "pad_token": nets.EOS, "unk_token": nets.UNK})
    os.makedirs(f"{out}/scheduler", exist_ok=True)
    nets.write_json(f"{out}/scheduler/scheduler_config.json", {
        "_class_name": "EulerAncestralDiscreteScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085,
        "beta_end": 0.012, "beta_schedule": "scaled_linear", "prediction_type": "epsilon", "steps_offset": 1,
        "timestep_spacing": "linspace"})
    nets.write_json(f"{out}/model_index.json", {
        "_class_name": "StableDiffusionInstructPix2PixPipeline", "_name_or_path": "layerloop/tiny-pix2pix",
        "native_size": size, "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "PreTrainedTokenizerFast"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae_encoder": ["diffusers", "AutoencoderKL"], "vae_decoder": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "EulerAncestralDiscreteScheduler"]})
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"exported to {out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
