"""A diffusers folder (what `save_pretrained` writes) -> the ONNX model folder layerloop's engine loads.

    python tools/export/export_model.py --diffusers DIR --out DIR [--text-encoder-out-layers 9,18,27]
        [--max-sequence-length 512] [--precision fp32|fp16|bf16]

The family comes from the folder's model_index.json `_class_name`:

FLUX.2 [klein] (`Flux2KleinPipeline`; diffusers' numerics, pipelines/flux2/pipeline_flux2_klein.py):
  text_encoder/model.onnx  input_ids int64 [B, T], attention_mask int64 [B, T]
                           -> prompt_embeds [B, T, L*D]: the hidden states of the chosen layers, stacked and
                              reshaped as _get_qwen3_prompt_embeds returns them
  transformer/model.onnx   hidden_states [B, N, 128] (target ++ reference tokens), encoder_hidden_states [B, T, L*D],
                           timestep [B] (sigma, i.e. the pipeline's t / 1000), img_ids int64 [N, 4], txt_ids int64
                           [T, 4] -> velocity [B, N, 128]. The ids are 2-D because the transformer reads only the
                           first batch element's ids.
  vae_encoder/model.onnx   sample [B, 3, H, W] in [-1, 1] -> latent [B, 128, H/16, W/16]: the posterior mode,
                           2x2-patchified and batch-norm normalised (the pipeline's _encode_vae_image)
  vae_decoder/model.onnx   latent [B, 128, h, w] (normalised, patchified) -> sample [B, 3, 16h, 16w]
  vae_decoder/config.json  the VAE's config plus `latents_bn_mean` / `latents_bn_std` (128 each), which map the
                           engine's latent to the layout diffusers returns with output_type="latent"
  tokenizer/, scheduler/   copied; model_index.json records is_distilled, the text-encoder layers and the
                           sequence length (call arguments in diffusers, fixed at export here)
  Exported with torch's dynamo exporter (opset 20): the TorchScript exporter fails on aten::rms_norm.

InstructPix2Pix (`StableDiffusionInstructPix2PixPipeline`): text_encoder, unet, vae_encoder, vae_decoder in the
diffusers/optimum layout server/engine/pix2pix/sessions.ts reads (see tools/export/README.md).

--precision fp16|bf16 stores the weights in that type and keeps every input and output float32 (casts inside
the graph), the safe choice for FLUX models that overflow in fp16 activations: bf16 keeps fp32's range.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import torch
from torch import nn

OPSET = 20
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def read_json(path: str) -> dict:
    with open(path, encoding="utf8") as f:
        return json.load(f)


def write_json(path: str, value: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


CHECK = True  # --no-check turns the ONNX Runtime comparison off (it runs each component once more)
PRECISION = "fp32"
# allowed max error relative to the output's scale: fp16 kernels differ between PyTorch and ONNX Runtime by ~1e-3
TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}


def check_export(module: nn.Module, args: tuple, path: str, inputs: list[str]) -> None:
    """ONNX Runtime (CPU) on the export's example inputs against PyTorch; stops the export on a mismatch."""
    if not CHECK:
        return
    if PRECISION == "bf16":
        print("    not checked: ONNX Runtime's CPU provider has no bf16 kernels for most operators (run it on CUDA)", flush=True)
        return
    import numpy as np
    import onnxruntime as ort

    with torch.no_grad():
        want = module(*args)
    want = (want[0] if isinstance(want, tuple) else want).float().numpy()
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {name: a.numpy() for name, a in zip(inputs, args) if name in {i.name for i in session.get_inputs()}}
    got = session.run(None, feeds)[0].astype(np.float32)
    err = float(np.abs(want - got).max())
    scale = float(np.abs(want).max()) or 1.0
    print(f"    ONNX Runtime vs PyTorch: max abs error {err:.2e} (output scale {scale:.2f})", flush=True)
    if err > TOLERANCE[PRECISION] * scale:
        sys.exit(f"{path}: ONNX Runtime differs from PyTorch by {err:.2e} (scale {scale:.2f}); the export is wrong")


def export_dynamo(module: nn.Module, args: tuple, path: str, inputs: list[str], outputs: list[str], shapes: tuple) -> None:
    """torch.export + ONNX (opset 20); files over 2 GB go to external data beside model.onnx."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    module.eval()
    if isinstance(module, Cast):
        shapes = (shapes,)  # Cast.forward takes *args: torch.export sees them as one tuple
    program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET, input_names=inputs, output_names=outputs,
                                dynamic_shapes=shapes, optimize=True, verbose=False)
    program.save(path, external_data=_too_big_for_protobuf(module))
    strip_debug_info(path)
    print(f"  {path}", flush=True)
    check_export(module, args, path, inputs)


def strip_debug_info(path: str) -> None:
    """Drop the exporter's per-node metadata (Python stack traces, FX node names): ONNX Runtime never reads it, and
    on a small model it outweighs the weights (a 0.9 M-parameter transformer: 3.7 MB of weights, 1 MB of traces)."""
    import onnx

    model = onnx.load(path, load_external_data=False)  # external tensors keep their locations
    for graph_nodes in [model.graph.node, *(f.node for f in model.functions)]:
        for node in graph_nodes:
            del node.metadata_props[:]
            node.doc_string = ""
    onnx.save(model, path)


def _too_big_for_protobuf(module: nn.Module) -> bool:
    return sum(p.numel() * p.element_size() for p in module.parameters()) > 1_800_000_000


class Cast(nn.Module):
    """Runs `inner` in `dtype` with float32 in and out (integer inputs pass through)."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.inner, self.dtype = inner, dtype

    def forward(self, *args):
        args = tuple(a.to(self.dtype) if a.is_floating_point() else a for a in args)
        out = self.inner(*args)
        return out.float()


# ---------------------------------------------------------------------------------------------------------------
# FLUX.2 [klein]

class QwenPromptEmbeds(nn.Module):
    def __init__(self, text_encoder: nn.Module, layers: list[int]):
        super().__init__()
        self.text_encoder, self.layers = text_encoder, layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False)
        stacked = torch.stack([out.hidden_states[k] for k in self.layers], dim=1)  # [B, L, T, D]
        b, l, t, d = stacked.shape
        return stacked.permute(0, 2, 1, 3).reshape(b, t, l * d)


class KleinTransformer(nn.Module):
    def __init__(self, transformer: nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, hidden_states, encoder_hidden_states, timestep, img_ids, txt_ids):
        return self.transformer(hidden_states=hidden_states, encoder_hidden_states=encoder_hidden_states, timestep=timestep,
                                img_ids=img_ids, txt_ids=txt_ids, guidance=None, return_dict=False)[0]


def bn_stats(vae) -> tuple[torch.Tensor, torch.Tensor]:
    mean = vae.bn.running_mean.detach().float()
    std = torch.sqrt(vae.bn.running_var.detach().float() + vae.config.batch_norm_eps)
    return mean, std


def patchify(z: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, 4C, H/2, W/2], as Flux2KleinPipeline._patchify_latents
    b, c, h, w = z.shape
    return z.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, c * 4, h // 2, w // 2)


def unpatchify(z: torch.Tensor) -> torch.Tensor:  # the inverse, as _unpatchify_latents
    b, c, h, w = z.shape
    return z.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // 4, h * 2, w * 2)


class KleinVaeEncoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae
        mean, std = bn_stats(vae)
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        mode = self.vae.encode(sample).latent_dist.mode()
        z = patchify(mode)
        return (z - self.mean.to(z.dtype)) / self.std.to(z.dtype)


class KleinVaeDecoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae
        mean, std = bn_stats(vae)
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        z = unpatchify(latent * self.std.to(latent.dtype) + self.mean.to(latent.dtype))
        return self.vae.decode(z, return_dict=False)[0]


def export_klein(src: str, out: str, layers: list[int] | None, max_len: int, precision: str, native_size: int | None) -> None:
    from diffusers import AutoencoderKLFlux2, Flux2Transformer2DModel
    from transformers import Qwen3ForCausalLM

    dtype = DTYPES[precision]
    index = read_json(os.path.join(src, "model_index.json"))
    text_encoder = Qwen3ForCausalLM.from_pretrained(os.path.join(src, "text_encoder"), torch_dtype=torch.float32).eval()
    n_layers = text_encoder.config.num_hidden_layers
    layers = layers or [9, 18, 27]
    bad = [k for k in layers if not 0 <= k <= n_layers]
    if bad:
        sys.exit(f"--text-encoder-out-layers {bad}: the text encoder has hidden states 0..{n_layers} ({n_layers} layers)")
    transformer = Flux2Transformer2DModel.from_pretrained(os.path.join(src, "transformer"), torch_dtype=torch.float32).eval()
    vae = AutoencoderKLFlux2.from_pretrained(os.path.join(src, "vae"), torch_dtype=torch.float32).eval()
    text_dim = len(layers) * text_encoder.config.hidden_size
    if transformer.config.joint_attention_dim != text_dim:
        sys.exit(f"{len(layers)} text-encoder layers of width {text_encoder.config.hidden_size} give {text_dim} features; "
                 f"the transformer's joint_attention_dim is {transformer.config.joint_attention_dim}: pick layers to match")
    if transformer.config.in_channels != 4 * vae.config.latent_channels:
        sys.exit(f"transformer in_channels {transformer.config.in_channels} != 4 x VAE latent_channels {vae.config.latent_channels}")

    def cast(m: nn.Module) -> nn.Module:
        return m if dtype == torch.float32 else Cast(m.to(dtype), dtype)

    B, T, N = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("sequence", min=2, max=max(max_len, 2)), torch.export.Dim("tokens", min=2, max=65536)
    print(f"exporting {src} (FLUX.2 klein, {precision}) -> {out}", flush=True)
    with torch.no_grad():
        ids = torch.zeros(2, 8, dtype=torch.int64)
        export_dynamo(cast(QwenPromptEmbeds(text_encoder, layers)), (ids, torch.ones_like(ids)), os.path.join(out, "text_encoder", "model.onnx"),
                      ["input_ids", "attention_mask"], ["prompt_embeds"], ({0: B, 1: T}, {0: B, 1: T}))
        c = transformer.config.in_channels
        args = (torch.randn(2, 12, c), torch.randn(2, 8, text_dim), torch.full((2,), 0.5), torch.zeros(12, 4, dtype=torch.int64),
                torch.zeros(8, 4, dtype=torch.int64))
        export_dynamo(cast(KleinTransformer(transformer)), args, os.path.join(out, "transformer", "model.onnx"),
                      ["hidden_states", "encoder_hidden_states", "timestep", "img_ids", "txt_ids"], ["velocity"],
                      ({0: B, 1: N}, {0: B, 1: T}, {0: B}, {0: N}, {0: T}))
        H, W = torch.export.Dim("height16", min=1, max=256), torch.export.Dim("width16", min=1, max=256)
        export_dynamo(cast(KleinVaeEncoder(vae)), (torch.randn(2, 3, 64, 48),), os.path.join(out, "vae_encoder", "model.onnx"),
                      ["sample"], ["latent"], ({0: B, 2: 16 * H, 3: 16 * W},))
        export_dynamo(cast(KleinVaeDecoder(vae)), (torch.randn(2, c, 4, 3),), os.path.join(out, "vae_decoder", "model.onnx"),
                      ["latent"], ["sample"], ({0: B, 2: H, 3: W},))

    mean, std = bn_stats(vae)
    vae_config = {k: v for k, v in dict(vae.config).items() if not k.startswith("_")}
    for part in ("vae_encoder", "vae_decoder"):
        write_json(os.path.join(out, part, "config.json"), {
            **vae_config, "_class_name": "AutoencoderKLFlux2",
            "latents_bn_mean": mean.tolist(), "latents_bn_std": std.tolist(),
            "layerloop_layout": "latent = (patchify_2x2(posterior mode) - latents_bn_mean) / latents_bn_std, [B, 128, H/16, W/16]",
        })
    write_json(os.path.join(out, "transformer", "config.json"), {k: v for k, v in dict(transformer.config).items() if not k.startswith("_")})
    write_json(os.path.join(out, "text_encoder", "config.json"), {**text_encoder.config.to_dict(), "out_layers": layers})
    for part in ("tokenizer", "scheduler"):
        shutil.copytree(os.path.join(src, part), os.path.join(out, part), dirs_exist_ok=True)
    write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "Flux2KleinPipeline",
        "is_distilled": bool(index.get("is_distilled", False)),
        "text_encoder_out_layers": layers,
        "max_sequence_length": max_len,
        "precision": precision,
        "exported_from": os.path.basename(os.path.normpath(src)),
        **({"native_size": native_size} if native_size else {}),
    })
    print(f"wrote {out}")


# ---------------------------------------------------------------------------------------------------------------
# InstructPix2Pix

class UnetExport(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class TextExport(nn.Module):
    def __init__(self, text):
        super().__init__()
        self.text = text

    def forward(self, input_ids):
        out = self.text(input_ids=input_ids, return_dict=True)
        return out.last_hidden_state, out.pooler_output


class VaeEncoderExport(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        h = self.vae.encoder(sample)
        return self.vae.quant_conv(h) if self.vae.quant_conv is not None else h  # mean || logvar


class VaeDecoderExport(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample, return_dict=False)[0]


def export_pix2pix(src: str, out: str, precision: str) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    if precision == "bf16":
        sys.exit("--precision bf16 is for FLUX models; InstructPix2Pix exports in fp32 or fp16")
    dtype = DTYPES[precision]
    unet = UNet2DConditionModel.from_pretrained(os.path.join(src, "unet")).eval()
    if unet.config.in_channels != 8:
        sys.exit(f"{src}/unet: in_channels {unet.config.in_channels}; an InstructPix2Pix UNet takes 8")
    text = CLIPTextModel.from_pretrained(os.path.join(src, "text_encoder")).eval()
    vae = AutoencoderKL.from_pretrained(os.path.join(src, "vae")).eval()
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    size = unet.config.sample_size or 64
    dim = text.config.hidden_size

    def run(m: nn.Module, args: tuple, part: str, inputs: list[str], outputs: list[str], axes: dict) -> None:
        path = os.path.join(out, part, "model.onnx")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.onnx.export(m.to(dtype), args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=17, dynamo=False, do_constant_folding=True,
                          external_data=_too_big_for_protobuf(m))
        print(f"  {path}", flush=True)
        check_export(m, args, path, inputs)

    print(f"exporting {src} (InstructPix2Pix, {precision}) -> {out}", flush=True)
    with torch.no_grad():
        run(TextExport(text), (torch.zeros(1, text.config.max_position_embeddings, dtype=torch.int64),), "text_encoder",
            ["input_ids"], ["last_hidden_state", "pooler_output"], {"input_ids": {0: "batch", 1: "sequence"}})
        run(UnetExport(unet), (torch.randn(2, 8, size, size, dtype=dtype), torch.tensor([500.0], dtype=dtype),
                               torch.randn(2, text.config.max_position_embeddings, dim, dtype=dtype)), "unet",
            ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
            {"sample": {0: "batch", 2: "height", 3: "width"}, "encoder_hidden_states": {0: "batch", 1: "sequence"}})
        run(VaeEncoderExport(vae), (torch.randn(1, 3, size * factor, size * factor, dtype=dtype),), "vae_encoder",
            ["sample"], ["latent_parameters"], {"sample": {0: "batch", 2: "height", 3: "width"}})
        run(VaeDecoderExport(vae), (torch.randn(1, vae.config.latent_channels, size, size, dtype=dtype),), "vae_decoder",
            ["latent_sample"], ["sample"], {"latent_sample": {0: "batch", 2: "height", 3: "width"}})
    for part, model in (("unet", unet), ("vae_encoder", vae), ("vae_decoder", vae), ("text_encoder", None)):
        if model is not None:
            write_json(os.path.join(out, part, "config.json"), {k: v for k, v in dict(model.config).items() if not k.startswith("_")})
    for part in ("tokenizer", "scheduler"):
        shutil.copytree(os.path.join(src, part), os.path.join(out, part), dirs_exist_ok=True)
    write_json(os.path.join(out, "model_index.json"), {"_class_name": "StableDiffusionInstructPix2PixPipeline",
                                                      "native_size": size * factor, "precision": precision})
    print(f"wrote {out}")


FAMILIES = {
    "Flux2KleinPipeline": "klein",
    "StableDiffusionInstructPix2PixPipeline": "pix2pix",
}


def main() -> None:
    ap = argparse.ArgumentParser(description="Export a diffusers folder to layerloop's ONNX model folder.")
    ap.add_argument("--diffusers", required=True, help="a diffusers save_pretrained folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--text-encoder-out-layers", default="9,18,27", help="klein: hidden-state layers to stack (diffusers' default)")
    ap.add_argument("--max-sequence-length", type=int, default=512, help="klein: prompt tokens after padding (diffusers' default)")
    ap.add_argument("--precision", choices=sorted(DTYPES), default="fp32")
    ap.add_argument("--native-size", type=int, default=None,
                    help="klein: the side of the square area the model works at (the engine's default working size; 1024 when absent)")
    ap.add_argument("--no-check", action="store_true", help="skip running each exported component in ONNX Runtime against PyTorch")
    args = ap.parse_args()
    global CHECK, PRECISION
    CHECK, PRECISION = not args.no_check, args.precision
    index_file = os.path.join(args.diffusers, "model_index.json")
    if not os.path.exists(index_file):
        sys.exit(f"{args.diffusers}: no model_index.json (is it a diffusers save_pretrained folder?)")
    name = read_json(index_file).get("_class_name")
    family = FAMILIES.get(name)
    if family is None:
        sys.exit(f"{index_file}: _class_name {name!r} is not a family this tool exports ({', '.join(FAMILIES)})")
    torch.set_num_threads(min(torch.get_num_threads(), int(os.environ.get("EXPORT_THREADS", "2"))))
    if family == "klein":
        layers = [int(v) for v in args.text_encoder_out_layers.split(",") if v.strip()]
        export_klein(args.diffusers, args.out, layers, args.max_sequence_length, args.precision, args.native_size)
    else:
        export_pix2pix(args.diffusers, args.out, args.precision)


if __name__ == "__main__":
    main()
