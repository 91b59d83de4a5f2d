"""Fit a klein model's latent->RGB preview map and store it in the exported folder's vae_decoder/config.json.

    PYTHONPATH=/work/scratch/diffusers/src python tools/tiny-klein/fit_preview.py \
        --diffusers /tmp/klein-train/diffusers-best --model models/tiny-flux2-klein [--images 256]

The engine's progress previews then skip the VAE decoder: each pixel of the VAE latent [32, H/8, W/8] times
`latent_rgb_factors` ([32][3]) plus `latent_rgb_bias` ([3]) is the image averaged over that pixel's 8x8 block,
in [-1, 1]. Least squares (with the bias) over shapes-world images encoded by the model's own VAE (the encoder's
means, as the pipeline encodes), on a seed no training or evaluation uses; prints the fit's PSNR against the
8x-downsampled images, on the fitted and on fresh images.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tiny-model"))
import shapes_world as world  # noqa: E402

from diffusers import AutoencoderKLFlux2  # noqa: E402

FIT_SEED, CHECK_SEED = 515151, 525252


def samples(vae: AutoencoderKLFlux2, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(latent pixels [N*h*w, C], their 8x8-block mean colours in [-1, 1] [N*h*w, 3])."""
    rng = np.random.default_rng(seed)
    images = np.stack([world.random_case(rng, 128).source for _ in range(n)])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        z = torch.cat([vae.encode(x[i:i + 32]).latent_dist.mode() for i in range(0, n, 32)])
    f = x.shape[-1] // z.shape[-1]
    target = torch.nn.functional.avg_pool2d(x, f)
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).numpy(), target.permute(0, 2, 3, 1).reshape(-1, 3).numpy()


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    mse = float(np.mean((np.clip(pred, -1, 1) - target) ** 2))
    return 10 * math.log10(4.0 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--diffusers", required=True, help="the diffusers folder the model was exported from (its vae/)")
    ap.add_argument("--model", required=True, help="the exported model folder: its vae_decoder/config.json gets the map")
    ap.add_argument("--images", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    vae = AutoencoderKLFlux2.from_pretrained(os.path.join(args.diffusers, "vae")).eval()
    z, rgb = samples(vae, args.images, FIT_SEED)
    design = np.concatenate([z, np.ones((z.shape[0], 1), np.float32)], axis=1)
    solution, *_ = np.linalg.lstsq(design.astype(np.float64), rgb.astype(np.float64), rcond=None)
    factors, bias = solution[:-1], solution[-1]
    z2, rgb2 = samples(vae, 64, CHECK_SEED)
    fit, fresh = psnr(design @ solution, rgb), psnr(z2 @ factors + bias, rgb2)
    print(f"preview map: PSNR vs the 8x-downsampled image {fit:.2f} dB on the {args.images} fitted images, {fresh:.2f} dB on 64 fresh ones")
    path = os.path.join(args.model, "vae_decoder", "config.json")
    with open(path) as f:
        config = json.load(f)
    config["latent_rgb_factors"] = [[round(float(v), 6) for v in row] for row in factors]
    config["latent_rgb_bias"] = [round(float(v), 6) for v in bias]
    config["latent_rgb_fit"] = {"images": args.images, "seed": FIT_SEED, "psnr_fitted_db": round(fit, 2), "psnr_fresh_db": round(fresh, 2)}
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    print(f"wrote latent_rgb_factors / latent_rgb_bias to {path}")


if __name__ == "__main__":
    main()
