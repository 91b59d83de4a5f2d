"""Reference InstructPix2Pix edit loop on an exported model folder (numpy + onnxruntime + diffusers' schedulers).

It is the yardstick for the TypeScript engine (parity fixtures) and runs the model evaluation. The scheduler maths
is diffusers' own: `EulerAncestralDiscreteScheduler`, `EulerDiscreteScheduler` and `DDIMScheduler` (`set_timesteps`,
`set_begin_index`, `scale_model_input`, `step`, `add_noise`), driven the way diffusers' pipelines drive them: the
InstructPix2Pix batch and guidance (pipeline_stable_diffusion_instruct_pix2pix.py), the SDEdit start of img2img
(`timesteps[t_start:]`, `add_noise` at the first kept timestep) and the latent blending of the inpaint pipeline
(after each step, the source noised to the next timestep with the initial noise; the clean source after the last).
The engine's own extensions are written out here in numpy (engine.md section 6, DESIGN.md 4): regions with their
own instructions and masks, masked guidance, spread, and Blended Latent Diffusion's progressive mask shrinking.

Noise is passed in explicitly so both implementations consume the same draws: first the initial noise [4,h,w],
then one draw per step for Euler ancestral (diffusers' own `randn_tensor` call inside `step` is fed from the list).

Run with diffusers importable (pip install diffusers, or PYTHONPATH=/path/to/diffusers/src).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import onnxruntime as ort
import torch

import nets

SAMPLERS = ("euler_ancestral", "euler", "ddim")


def downsample(mask: np.ndarray, factor: int) -> np.ndarray:
    """Area average by an integer factor (pixel mask -> latent grid)."""
    h, w = mask.shape
    return mask.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _max_pass(src: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """out(i) = max over |d| < len(weights) of weights[|d|] * src(i + d) along `axis`, outside samples ignored."""
    out = np.zeros_like(src, dtype=np.float64)
    n = src.shape[axis]
    for d in range(-(len(weights) - 1), len(weights)):
        lo, hi = max(0, -d), min(n, n - d)  # i with 0 <= i + d < n
        if lo >= hi:
            continue
        dst = [slice(None)] * 2
        srcs = [slice(None)] * 2
        dst[axis], srcs[axis] = slice(lo, hi), slice(lo + d, hi + d)
        out[tuple(dst)] = np.maximum(out[tuple(dst)], weights[abs(d)] * src[tuple(srcs)])
    return out


def dilate(mask: np.ndarray, kernel: int) -> np.ndarray:
    """Grey dilation with a square kernel (scipy binary_dilation with ones((k, k)) on binary masks)."""
    flat = np.ones(kernel // 2 + 1)
    return _max_pass(_max_pass(mask, flat, 1), flat, 0)


def spread_mask(mask: np.ndarray, spread: float) -> np.ndarray:
    """Widen a latent mask from local (0) to global (1): a soft square dilation (engine masks.spreadMask)."""
    if spread == 0:
        return mask
    if spread == 1:
        return np.ones_like(mask)
    h, w = mask.shape
    reach = (max(w, h) / 2) * spread / (1 - spread)
    core = reach / 2
    extent = min(math.ceil(reach), max(w, h) - 1)
    g = np.array([1.0 if d <= core else max(0.0, (reach - d) / (reach - core)) for d in range(extent + 1)])
    return _max_pass(_max_pass(mask, g, 1), g, 0)


@dataclass
class Region:
    instruction: str
    mask: np.ndarray | None  # latent-size soft mask [h, w], None = everywhere


@dataclass
class Options:
    steps: int = 20
    sampler: str = "euler_ancestral"
    text_scale: float = 7.5
    image_scale: float = 1.5
    locality: str = "both"  # guidance | blend | both
    spread: float = 0.0
    strength: float = 1.0
    progressive: bool = True


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

    def scheduler(self, sampler: str):
        """The diffusers scheduler for `sampler`, from the folder's scheduler_config.json (DDIM as SD configures it)."""
        from diffusers import DDIMScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler

        with open(os.path.join(self.folder, "scheduler", "scheduler_config.json")) as f:
            config = json.load(f)
        if sampler == "euler_ancestral":
            return EulerAncestralDiscreteScheduler.from_config(config)
        if sampler == "euler":
            return EulerDiscreteScheduler.from_config(config)
        if sampler == "ddim":
            return DDIMScheduler.from_config(config, timestep_spacing="leading", clip_sample=False, set_alpha_to_one=False)
        raise ValueError(f"unknown sampler {sampler}")

    def encode_text(self, prompts: list[str]) -> np.ndarray:
        return self.text.run(["last_hidden_state"], {"input_ids": self.tokenizer.batch(prompts).numpy()})[0]

    def encode(self, image_u8: np.ndarray) -> np.ndarray:
        """uint8 [H,W,3] -> unscaled posterior mean [1,4,h,w]."""
        x = (image_u8.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        return self.enc.run(["latent_parameters"], {"sample": x})[0][:, :4]

    def decode_float(self, latent_unscaled: np.ndarray) -> np.ndarray:
        """[1,4,h,w] -> float [3,H,W] in about [-1, 1]."""
        return self.dec.run(["sample"], {"latent_sample": latent_unscaled.astype(np.float32)})[0][0]

    def decode(self, latent_unscaled: np.ndarray) -> np.ndarray:
        """[1,4,h,w] -> uint8 [H,W,3], rounding like diffusers."""
        img = self.decode_float(latent_unscaled)
        return np.round(np.clip((img + 1) / 2, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


@contextlib.contextmanager
def step_noise(draws: Iterator[np.ndarray]):
    """Feed diffusers' Euler-ancestral `step` its per-step noise from `draws` instead of torch's generator."""
    import diffusers.schedulers.scheduling_euler_ancestral_discrete as ea

    original = ea.randn_tensor
    ea.randn_tensor = lambda shape, **_: torch.from_numpy(next(draws).reshape(shape).astype(np.float32))
    try:
        yield
    finally:
        ea.randn_tensor = original


def guide(eps: np.ndarray, regions: int, masks: list[np.ndarray | None], o: Options) -> np.ndarray:
    """out = eU + sI (eI - eU) + sum_r m_r sT (eT_r - eI); batch [text_1..R, image, uncond] (diffusers' for R = 1)."""
    e_i, e_u = eps[regions:regions + 1], eps[regions + 1:regions + 2]
    out = e_u + o.image_scale * (e_i - e_u)
    for r in range(regions):
        m = 1.0 if masks[r] is None else masks[r][None, None]
        out = out + m * o.text_scale * (eps[r:r + 1] - e_i)
    return out


def edit(model: Model, c: np.ndarray, regions: list[Region], noise: list[np.ndarray], o: Options = Options()) -> np.ndarray:
    """c: unscaled image conditioning [1,4,h,w]. Returns the final scaled latent z0 [1,4,h,w] (for DDIM the sample
    diffusers returns, at alphas_cumprod[0]). `noise` is consumed in order (see module doc)."""
    draws = iter(noise)
    sched = model.scheduler(o.sampler)
    sched.set_timesteps(o.steps)
    start = o.steps - min(int(o.steps * o.strength), o.steps)  # img2img's t_start
    timesteps = sched.timesteps[start:]
    if hasattr(sched, "set_begin_index"):  # sigma-space schedulers find the step from it; DDIM steps by timestep
        sched.set_begin_index(start)

    R = len(regions)
    z_src = torch.from_numpy(c * model.scaling)
    text = model.encode_text([r.instruction for r in regions] + [""])
    ehs = np.concatenate([text[:R], text[R:R + 1], text[R:R + 1]]).astype(np.float32)
    image = np.concatenate([c] * (R + 1) + [np.zeros_like(c)]).astype(np.float32)

    masks = [None if r.mask is None else spread_mask(r.mask, o.spread) for r in regions]
    guidance_masks = [None] if (o.locality == "blend" and R == 1) else masks  # several regions always need their masks
    blend_masks = None
    if o.locality != "guidance" and all(m is not None for m in masks):
        union = np.max(np.stack(masks), axis=0)
        blend_masks = [dilate(union, 7), dilate(union, 5), dilate(union, 3), union] if o.progressive else [union]

    n0 = torch.from_numpy(next(draws).reshape(c.shape).astype(np.float32))
    x = n0 * sched.init_noise_sigma if o.strength >= 1 else sched.add_noise(z_src, n0, timesteps[:1])
    total = len(timesteps)
    with step_noise(draws):
        for i, t in enumerate(timesteps):
            xin = sched.scale_model_input(torch.cat([x] * (R + 2)), t).numpy()
            eps = model.unet.run(["out_sample"], {"sample": np.concatenate([xin, image], axis=1).astype(np.float32),
                                                  "timestep": np.full([R + 2], float(t), np.float32),
                                                  "encoder_hidden_states": ehs})[0].astype(np.float64)
            guided = torch.from_numpy(guide(eps, R, guidance_masks, o).astype(np.float32))
            x = sched.step(guided, t, x).prev_sample
            if blend_masks is not None:
                interval = total // len(blend_masks) + 1
                m = torch.from_numpy(blend_masks[i // interval][None, None].astype(np.float32))
                background = sched.add_noise(z_src, n0, timesteps[i + 1:i + 2]) if i < total - 1 else z_src
                x = m * x + (1 - m) * background
    return x.numpy().astype(np.float32)


def seeded_noise(seed: int, shape: tuple[int, ...], draws: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(draws)]


def draws_needed(o: Options) -> int:
    """The initial noise, then one draw per step run for Euler ancestral."""
    run = min(int(o.steps * o.strength), o.steps)
    return 1 + (run if o.sampler == "euler_ancestral" else 0)
