"""Reference InstructPix2Pix edit loop in numpy + onnxruntime, on an exported model folder.

It is the yardstick for the TypeScript engine (parity fixtures) and runs the model evaluation. It follows
engine.md sections 1.6, 1.8, 5 and 6 literally, in sigma space, with noise passed in explicitly so both
implementations can consume the same draws: first the initial noise [4,h,w], then one draw per step
(Euler ancestral only).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

import nets


def alphas_cumprod(n: int = 1000, b0: float = 0.00085, b1: float = 0.012) -> np.ndarray:
    betas = np.linspace(math.sqrt(b0), math.sqrt(b1), n, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


def euler_schedule(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """linspace spacing: fractional timesteps, sigmas interpolated linearly in sigma, final 0."""
    ac = alphas_cumprod()
    sig = np.sqrt((1 - ac) / ac)
    ts = np.linspace(0, 999, steps, dtype=np.float64)[::-1].copy()
    sigmas = np.interp(ts, np.arange(1000), sig)
    return ts, np.concatenate([sigmas, [0.0]])


def dilate(mask: np.ndarray, kernel: int) -> np.ndarray:
    r = kernel // 2
    h, w = mask.shape
    padded = np.pad(mask, r, constant_values=0.0)
    out = np.zeros_like(mask)
    for dy in range(kernel):
        for dx in range(kernel):
            out = np.maximum(out, padded[dy:dy + h, dx:dx + w])
    return out


def downsample(mask: np.ndarray, factor: int) -> np.ndarray:
    h, w = mask.shape
    return mask.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


@dataclass
class Model:
    folder: str
    text: ort.InferenceSession = field(init=False)
    unet: ort.InferenceSession = field(init=False)
    enc: ort.InferenceSession = field(init=False)
    dec: ort.InferenceSession = field(init=False)
    scaling: float = field(init=False)
    tokenizer: nets.WordTokenizer = field(init=False)

    def __post_init__(self) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        load = lambda c: ort.InferenceSession(os.path.join(self.folder, c, "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self.text, self.unet, self.enc, self.dec = (load(c) for c in ("text_encoder", "unet", "vae_encoder", "vae_decoder"))
        with open(os.path.join(self.folder, "vae_decoder", "config.json")) as f:
            self.scaling = json.load(f)["scaling_factor"]
        with open(os.path.join(self.folder, "tokenizer", "tokenizer.json")) as f:
            self.tokenizer = nets.WordTokenizer([])
            self.tokenizer.vocab = json.load(f)["model"]["vocab"]

    def encode_text(self, prompts: list[str]) -> np.ndarray:
        return self.text.run(["last_hidden_state"], {"input_ids": self.tokenizer.batch(prompts).numpy()})[0]

    def encode(self, image_u8: np.ndarray) -> np.ndarray:
        """uint8 [H,W,3] -> unscaled posterior mean [1,4,h,w]."""
        x = (image_u8.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        return self.enc.run(["latent_parameters"], {"sample": x})[0][:, :4]

    def decode(self, latent_unscaled: np.ndarray) -> np.ndarray:
        """[1,4,h,w] -> uint8 [H,W,3], rounding like diffusers."""
        img = self.dec.run(["sample"], {"latent_sample": latent_unscaled.astype(np.float32)})[0][0]
        return np.round(np.clip((img + 1) / 2, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def edit(model: Model, c: np.ndarray, instruction: str, noise: list[np.ndarray], steps: int = 20,
         text_scale: float = 7.5, image_scale: float = 1.5, mask: np.ndarray | None = None,
         locality: str = "both", progressive: bool = True, strength: float = 1.0) -> np.ndarray:
    """c: unscaled image conditioning [1,4,h,w]; mask: latent-size soft mask [h,w] or None (global).
    Returns the final scaled latent z0 [1,4,h,w]. `noise` is consumed in order (see module doc)."""
    draws = iter(noise)
    s = model.scaling
    ts, sigmas = euler_schedule(steps)
    z_src = c * s
    text = model.encode_text([instruction, ""])
    ehs = np.stack([text[0], text[1], text[1]]).astype(np.float32)  # [text+image, image-only, uncond]
    image = np.concatenate([c, c, np.zeros_like(c)]).astype(np.float32)
    init = min(int(steps * strength), steps)
    start = steps - init
    n0 = next(draws).reshape(c.shape).astype(np.float64)
    x = n0 * sigmas[0] if strength >= 1 else z_src + sigmas[start] * n0
    blend_masks = None
    if mask is not None and locality in ("blend", "both"):
        blend_masks = [dilate(mask, 7), dilate(mask, 5), dilate(mask, 3), mask] if progressive else [mask]
    guidance_mask = mask if (mask is not None and locality in ("guidance", "both")) else None
    total = steps - start
    for i in range(start, steps):
        sigma, nxt = sigmas[i], sigmas[i + 1]
        xin = np.concatenate([x] * 3) / math.sqrt(sigma**2 + 1)
        eps = model.unet.run(["out_sample"], {"sample": np.concatenate([xin, image], axis=1).astype(np.float32),
                                              "timestep": np.full([3], ts[i], np.float32),
                                              "encoder_hidden_states": ehs})[0].astype(np.float64)
        e_t, e_i, e_u = eps[0:1], eps[1:2], eps[2:3]
        m = 1.0 if guidance_mask is None else guidance_mask[None, None]
        guided = e_u + image_scale * (e_i - e_u) + m * text_scale * (e_t - e_i)
        denoised = x - sigma * guided
        up = math.sqrt(nxt**2 * (sigma**2 - nxt**2) / sigma**2)
        down = math.sqrt(nxt**2 - up**2)
        x = x + (x - denoised) / sigma * (down - sigma)
        x = x + next(draws).reshape(c.shape) * up
        if blend_masks is not None:
            interval = total // len(blend_masks) + 1
            bm = blend_masks[(i - start) // interval][None, None]
            x = bm * x + (1 - bm) * (z_src + nxt * n0)
    return x.astype(np.float32)


def seeded_noise(seed: int, shape: tuple[int, ...], steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(steps + 1)]
