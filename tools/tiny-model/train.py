"""Train tiny-pix2pix from scratch: dataset -> VAE -> latents -> UNet + text encoder.

    python tools/tiny-model/train.py --work /tmp/tiny-work          # full run (about an hour on 2 cores)
    python tools/tiny-model/train.py --work /tmp/w --quick          # smoke run (a minute)
    python tools/tiny-model/train.py --work /tmp/w2 --resume /tmp/tiny-work/tiny-pix2pix.pt \
        --seed 4321 --unet-steps 6000 --unet-lr 4e-4                 # more UNet training on fresh cases

Everything is seeded; the checkpoint lands in <work>/tiny-pix2pix.pt for export.py.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import nets
import shapes_world as world


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_dataset(n: int, seed: int, size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cases = [world.random_case(rng, size) for _ in range(n)]
    return {
        "source": np.stack([c.source for c in cases]),
        "target": np.stack([c.target for c in cases]),
        "instruction": np.array([c.instruction for c in cases]),
    }


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 [N,H,W,3] -> float [N,3,H,W] in [-1,1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def train_vae(images: np.ndarray, steps: int, batch: int, crop: int, full_steps: int) -> tuple[nets.Encoder, nets.Decoder]:
    enc, dec = nets.Encoder(), nets.Decoder()
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
    total = steps + full_steps
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=total, pct_start=0.05)
    g = torch.Generator().manual_seed(1)
    n, size = images.shape[0], images.shape[1]
    t0 = time.time()
    for step in range(total):
        c = crop if step < steps else size  # mostly crops (cheap), then full images (borders, context)
        b = batch if step < steps else max(batch // 4, 4)
        idx = torch.randint(0, n, (b,), generator=g)
        y0, x0 = (int(torch.randint(0, size - c + 1, (1,), generator=g)) // 8 * 8 for _ in range(2))
        x = to_unit(images[idx.numpy(), y0:y0 + c, x0:x0 + c])
        params8 = enc(x)
        mean, logvar = params8[:, :4], params8[:, 4:].clamp(-30, 20)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)
        rec = dec(z)
        kl = 0.5 * torch.mean(mean**2 + logvar.exp() - 1 - logvar)
        loss = F.mse_loss(rec, x) + 0.1 * F.l1_loss(rec, x) + 1e-6 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 200 == 0 or step == total - 1:
            psnr = 10 * math.log10(4.0 / max(F.mse_loss(dec(mean).detach(), x).item(), 1e-10))
            log(f"vae step {step}/{total} loss {loss.item():.5f} psnr(mean) {psnr:.2f} dB  {time.time() - t0:.0f}s")
    return enc.eval(), dec.eval()


@torch.no_grad()
def encode_means(enc: nets.Encoder, images: np.ndarray, batch: int = 64) -> torch.Tensor:
    return torch.cat([enc(to_unit(images[i:i + batch]))[:, :4] for i in range(0, len(images), batch)])


def train_unet(source_lat: torch.Tensor, target_lat: torch.Tensor, instructions: np.ndarray,
               tokenizer: nets.WordTokenizer, scaling: float, steps: int, batch: int, lr: float = 1e-3,
               start: dict | None = None, seed: int = 2) -> tuple[nets.UNet, nets.TextEncoder]:
    """InstructPix2Pix objective: eps-prediction on the SD schedule, image latent unscaled, noisy latent scaled,
    conditioning dropout (5% text, 5% image, 5% both) so dual classifier-free guidance works. `start`: the
    state dicts of a previous run's (EMA) UNet and text encoder to continue from."""
    text = nets.TextEncoder(len(tokenizer.vocab))
    unet = nets.UNet(context_dim=64)
    if start is not None:
        unet.load_state_dict(start["unet"])
        text.load_state_dict(start["text_encoder"])
    params = list(unet.parameters()) + list(text.parameters())
    log(f"unet params {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M, "
        f"text encoder {sum(p.numel() for p in text.parameters()) / 1e6:.3f} M")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.03)
    ema_unet, ema_text = copy.deepcopy(unet), copy.deepcopy(text)
    ac = nets.alphas_cumprod()
    ids_all = tokenizer.batch(list(instructions))
    empty_ids = tokenizer.batch([""])
    g = torch.Generator().manual_seed(seed)
    n = source_lat.shape[0]
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=g)
        c_img = source_lat[idx]  # unscaled image conditioning
        z0 = target_lat[idx] * scaling  # scaled target latent
        ids = ids_all[idx].clone()
        u = torch.rand(batch, generator=g)
        drop_text = (u < 0.05) | (u >= 0.10) & (u < 0.15)
        drop_image = (u >= 0.05) & (u < 0.15)
        ids[drop_text] = empty_ids
        c_img = c_img * (~drop_image).float()[:, None, None, None]
        t = torch.randint(0, 1000, (batch,), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        a = ac[t][:, None, None, None]
        # VP forward process; equivalent to the sigma form x = z0 + sigma*n scaled by 1/sqrt(sigma^2+1)
        noisy = a.sqrt() * z0 + (1 - a).sqrt() * noise
        eps = unet(torch.cat([noisy, c_img], dim=1), t.float(), text(ids))
        loss = F.mse_loss(eps, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema, live in ((ema_unet, unet), (ema_text, text)):
                for pe, pl in zip(ema.parameters(), live.parameters()):
                    pe.mul_(decay).add_(pl.detach(), alpha=1 - decay)
        if step % 250 == 0 or step == steps - 1:
            log(f"unet step {step}/{steps} loss {loss.item():.4f}  {time.time() - t0:.0f}s")
    return ema_unet.eval(), ema_text.eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="scratch folder for the dataset cache and checkpoint")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--vae-steps", type=int, default=2000)
    ap.add_argument("--vae-full-steps", type=int, default=200)
    ap.add_argument("--unet-steps", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--unet-lr", type=float, default=1e-3, help="peak learning rate of the UNet's one-cycle schedule")
    ap.add_argument("--resume", help="checkpoint to continue from: keeps its VAE and scaling, trains its UNet further")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run to check the pipeline end to end")
    args = ap.parse_args()
    if args.quick:
        args.cases, args.vae_steps, args.vae_full_steps, args.unet_steps = 256, 20, 4, 20
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    started = time.time()

    log(f"dataset: {args.cases} cases at {args.size}px (seed {args.seed})")
    data = make_dataset(args.cases, args.seed, args.size)
    images = np.concatenate([data["source"], data["target"]])

    start = None
    if args.resume:
        start = torch.load(args.resume, map_location="cpu")
        enc, dec = nets.Encoder(), nets.Decoder()
        enc.load_state_dict(start["encoder"])
        dec.load_state_dict(start["decoder"])
        enc.eval(), dec.eval()
        scaling = float(start["scaling_factor"])  # the VAE is unchanged, so is its scaling
        log(f"resumed from {args.resume}: VAE kept, scaling_factor {scaling:.5f}")
        source_lat = encode_means(enc, data["source"])
        target_lat = encode_means(enc, data["target"])
    else:
        log("vae")
        enc, dec = train_vae(images, args.vae_steps, 16, 64, args.vae_full_steps)
        source_lat = encode_means(enc, data["source"])
        target_lat = encode_means(enc, data["target"])
        scaling = float(1.0 / torch.cat([source_lat, target_lat]).std())
        log(f"latent std {1 / scaling:.4f} -> scaling_factor {scaling:.5f}")

    tokenizer = nets.WordTokenizer(world.VOCABULARY)
    if start is not None and start["vocab"] != tokenizer.vocab:
        raise SystemExit("the checkpoint's vocabulary differs from shapes_world.VOCABULARY: cannot resume")
    unet, text = train_unet(source_lat, target_lat, data["instruction"], tokenizer, scaling, args.unet_steps, args.batch,
                            lr=args.unet_lr, start=start, seed=2 if start is None else args.seed)

    ckpt = os.path.join(args.work, "tiny-pix2pix.pt")
    previous = [] if start is None else start.get("history", [{"args": start.get("args"), "train_seconds": start.get("train_seconds")}])
    history = previous + [{"args": vars(args), "train_seconds": time.time() - started}]
    torch.save({"encoder": enc.state_dict(), "decoder": dec.state_dict(), "unet": unet.state_dict(),
                "text_encoder": text.state_dict(), "vocab": tokenizer.vocab, "scaling_factor": scaling,
                "size": args.size, "args": vars(args), "train_seconds": time.time() - started, "history": history}, ckpt)
    with open(os.path.join(args.work, "train_summary.json"), "w") as f:
        json.dump({"seconds": round(time.time() - started), "args": vars(args), "scaling_factor": scaling,
                   "history": history}, f, indent=2, default=str)
    log(f"saved {ckpt} after {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
