"""Where latent iteration drifts: a checkpoint's empty-instruction rounds, per round and per image.

    python tools/tiny-model/latent_drift.py --checkpoint WORK/tiny-pix2pix.pt [--sources 16 --rounds 10 --image-scale 1.5]

Runs fresh shapes-world sources through `train.rollout_latents` (the engine's default loop restated in torch) and
prints, per round, the decoded PSNR to the source (mean and lowest), each round's latent step and how far it points
along the error so far (cosine near 1: errors add up in one direction; a lone low value with a large step: an image
flipped), and the latents' channel means against the sources'. Then each image's PSNR per round. Used for EVAL.md's
run 7; bench:eval measures the product itself.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import nets
from train import encode_means, make_dataset, rollout_latents


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--sources", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--image-scale", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=777, help="of the sources (training used 1234 and 4321 up; 777 never)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    tokenizer = nets.WordTokenizer([])
    tokenizer.vocab = ckpt["vocab"]
    enc, dec, unet, text = nets.networks_from_checkpoint(ckpt)

    sources = make_dataset(args.sources, args.seed, ckpt["size"])["source"]
    reference = sources.astype(np.float64)
    with torch.no_grad():
        z0 = encode_means(enc, sources)
        rounds = rollout_latents(unet, text, tokenizer, z0, float(ckpt["scaling_factor"]), args.rounds,
                                 image_scale=args.image_scale, seed=0)

        def psnr_to_sources(latents: torch.Tensor) -> np.ndarray:
            pixels = ((dec(latents).clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
            mse = ((pixels - reference) ** 2).reshape(len(sources), -1).mean(1)
            return 10 * np.log10(255 ** 2 / np.maximum(mse, 1e-10))

        print(f"VAE round trip {psnr_to_sources(z0).mean():.2f} dB; channel means of the sources "
              f"{[round(v, 3) for v in z0.mean((0, 2, 3)).tolist()]}")
        per_image, previous = [], z0
        for r in range(args.rounds):
            now = rounds[:, r]
            p = psnr_to_sources(now)
            per_image.append(p)
            step, error_so_far = (now - previous).flatten(), (previous - z0).flatten()
            cosine = float(torch.nn.functional.cosine_similarity(step, error_so_far, 0)) if r else float("nan")
            print(f"round {r + 1}: {p.mean():.2f} dB (lowest {p.min():.1f}), step rms {step.pow(2).mean().sqrt():.4f}, "
                  f"cosine to the error so far {cosine:.2f}, channel means "
                  f"{[round(v, 3) for v in now.mean((0, 2, 3)).tolist()]}")
            previous = now
    for i, row in enumerate(np.array(per_image).T):
        print(f"image {i}: " + " ".join(f"{v:.1f}" for v in row))


if __name__ == "__main__":
    main()
