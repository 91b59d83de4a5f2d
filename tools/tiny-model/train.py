"""Train tiny-pix2pix from scratch: dataset -> VAE -> latents -> UNet + text encoder.

    python tools/tiny-model/train.py --work /tmp/tiny-work          # full run (about an hour on 2 cores)
    python tools/tiny-model/train.py --work /tmp/w --quick          # smoke run (a minute)
    python tools/tiny-model/train.py --work /tmp/w2 --resume /tmp/tiny-work/tiny-pix2pix.pt \
        --seed 4321 --unet-steps 6000 --unet-lr 4e-4                 # more UNet training on fresh cases
    python tools/tiny-model/recover_checkpoint.py --model models/tiny-pix2pix --out /tmp/w3/shipped.pt
    python tools/tiny-model/train.py --work /tmp/w3 --resume /tmp/w3/shipped.pt --seed 5151 --threads 1 \
        --full-res-block --decoder-steps 3000 --unet-steps 4000 --unet-lr 3e-4 \
        --op-weights recolour=0.4,background=0.2,remove=0.25,identity=0.05,absent=0.1 --twin 0.35
                         # a sharper VAE decoder on the frozen encoder, then the UNet on a harder mix

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


def make_dataset(n: int, seed: int, size: int, op_weights: dict[str, float] | None = None,
                 twin: float = 0.0) -> dict[str, np.ndarray]:
    """n cases. op_weights: the operation mix (shapes_world's own when None; may include world.ABSENT);
    twin: the share of recolour and remove cases where another shape has the named shape's colour."""
    rng = np.random.default_rng(seed)
    if op_weights is None and twin == 0:
        cases = [world.random_case(rng, size) for _ in range(n)]
    else:
        weights = op_weights or dict(zip(world.OPS, world.OP_WEIGHTS))
        names, p = list(weights), np.array(list(weights.values()), np.float64)
        cases = []
        for _ in range(n):
            op = str(rng.choice(names, p=p / p.sum()))
            cases.append(world.random_case(rng, size, op, twin=op in ("recolour", "remove") and rng.random() < twin))
    return {
        "source": np.stack([c.source for c in cases]),
        "target": np.stack([c.target for c in cases]),
        "instruction": np.array([c.instruction for c in cases]),
        "mask": np.stack([c.mask for c in cases]),
    }


class Budget:
    """A training phase's length in steps, or in wall-clock seconds when `seconds` is set (whichever ends first),
    and its learning rate: one-cycle's shape (linear warm-up from lr/25, cosine down to about 0) over the
    fraction done, so a run given a deadline still ends fully annealed."""

    def __init__(self, steps: int, seconds: float | None, lr: float, warmup: float):
        self.steps, self.seconds, self.lr, self.warmup = steps, seconds, lr, warmup
        self.started = time.time()

    def fraction(self, step: int) -> float:
        f = step / self.steps
        if self.seconds:
            f = max(f, (time.time() - self.started) / self.seconds)
        return min(f, 1.0)

    def rate(self, f: float) -> float:
        if f < self.warmup:
            return self.lr / 25 + (self.lr - self.lr / 25) * f / self.warmup
        return self.lr * 0.5 * (1 + math.cos(math.pi * (f - self.warmup) / (1 - self.warmup)))

    def apply(self, opt: torch.optim.Optimizer, step: int) -> float | None:
        """Set this step's rate; None when the phase is over."""
        f = self.fraction(step)
        if f >= 1.0:
            return None
        for group in opt.param_groups:
            group["lr"] = self.rate(f)
        return f


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 [N,H,W,3] -> float [N,3,H,W] in [-1,1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def train_vae(images: np.ndarray, steps: int, batch: int, crop: int, full_steps: int,
              full_res_block: bool = False) -> tuple[nets.Encoder, nets.Decoder]:
    enc, dec = nets.Encoder(), nets.Decoder(full_res_block=full_res_block)
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


def finetune_decoder(dec: nets.Decoder, latents: torch.Tensor, images: np.ndarray, steps: int, full_steps: int,
                     lr: float, batch: int = 16, crop: int = 64, seed: int = 3, seconds: float | None = None) -> nets.Decoder:
    """Train only the decoder, on the frozen encoder's posterior means (`latents`, of `images`): every stored
    latent keeps its meaning and the UNet stays valid. Mostly aligned crops (cheap), then full images (borders)
    for the last full_steps / (steps + full_steps) of the phase."""
    params = list(dec.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    total = steps + full_steps
    budget = Budget(total, seconds, lr, 0.05)
    g = torch.Generator().manual_seed(seed)
    n, size = images.shape[0], images.shape[1]
    dec.train()
    t0 = time.time()
    for step in range(total):
        f = budget.apply(opt, step)
        if f is None:
            break
        full = f >= steps / total
        c = size if full else crop
        b = max(batch // 4, 4) if full else batch
        idx = torch.randint(0, n, (b,), generator=g)
        y0, x0 = (int(torch.randint(0, (size - c) // 8 + 1, (1,), generator=g)) * 8 for _ in range(2))
        x = to_unit(images[idx.numpy(), y0:y0 + c, x0:x0 + c])
        z = latents[idx][:, :, y0 // 8:(y0 + c) // 8, x0 // 8:(x0 + c) // 8]
        rec = dec(z)
        loss = F.mse_loss(rec, x) + 0.1 * F.l1_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 250 == 0 or step == total - 1:
            psnr = 10 * math.log10(4.0 / max(F.mse_loss(rec.detach().clamp(-1, 1), x).item(), 1e-10))
            log(f"decoder step {step}/{total} loss {loss.item():.5f} psnr(batch) {psnr:.2f} dB  {time.time() - t0:.0f}s")
    return dec.eval()


@torch.no_grad()
def encode_means(enc: nets.Encoder, images: np.ndarray, batch: int = 64) -> torch.Tensor:
    return torch.cat([enc(to_unit(images[i:i + batch]))[:, :4] for i in range(0, len(images), batch)])


@torch.no_grad()
def rollout_latents(unet: nets.UNet, text: nets.TextEncoder, tokenizer: nets.WordTokenizer, source_lat: torch.Tensor,
                    scaling: float, rounds: int, steps: int = 20, image_scale: float = 1.5, batch: int = 32,
                    seed: int = 0) -> torch.Tensor:
    """What latent iteration feeds the model after 1..`rounds` rounds of the empty instruction: [N, rounds, 4, h, w].

    Each round is the product's default edit (Euler ancestral, `steps` steps, image guidance 1.5; text guidance is a
    no-op for the empty instruction, so two passes suffice) conditioned on the previous round's output latent, as
    latent iteration does. Training on these conditionings with the clean target is meant to teach the model to undo
    its own drift (exposure bias: it never sees its own outputs as input); measured, it did not (EVAL.md, run 5)."""
    unet.eval(), text.eval()
    g = torch.Generator().manual_seed(seed)
    ac = nets.alphas_cumprod()
    all_sigmas = ((1 - ac) / ac).sqrt().numpy()
    timesteps = np.linspace(0, len(ac) - 1, steps)[::-1].copy()  # timestep_spacing "linspace"
    sigmas = np.append(np.interp(timesteps, np.arange(len(ac)), all_sigmas), 0.0)
    empty = text(tokenizer.batch([""]))
    out = torch.empty(source_lat.shape[0], rounds, *source_lat.shape[1:])
    t0 = time.time()
    for start in range(0, source_lat.shape[0], batch):
        cond = source_lat[start:start + batch]
        b = cond.shape[0]
        ctx = empty.expand(2 * b, -1, -1)
        for r in range(rounds):
            x = torch.randn(cond.shape, generator=g) * float(math.sqrt(sigmas[0] ** 2 + 1))
            for i, t in enumerate(timesteps):
                s_from, s_to = float(sigmas[i]), float(sigmas[i + 1])
                scaled = x / math.sqrt(s_from ** 2 + 1)
                inp = torch.cat([torch.cat([scaled, cond], 1), torch.cat([scaled, torch.zeros_like(cond)], 1)])
                eps_image, eps_none = unet(inp, torch.full((2 * b,), float(t)), ctx).chunk(2)
                eps = eps_none + image_scale * (eps_image - eps_none)
                up = math.sqrt(s_to ** 2 * (s_from ** 2 - s_to ** 2) / s_from ** 2)
                down = math.sqrt(s_to ** 2 - up ** 2)
                x = x + eps * (down - s_from)  # (x - x0) / sigma = eps
                if up:
                    x = x + torch.randn(x.shape, generator=g) * up
            cond = x / scaling
            out[start:start + b, r] = cond
        drift = ((out[:start + b, -1] - source_lat[:start + b]) ** 2).mean().sqrt() / source_lat.std()
        log(f"rollout {start + b}/{source_lat.shape[0]}: drift after {rounds} rounds {drift:.3f} of the latents' "
            f"spread  {time.time() - t0:.0f}s")
    return out


def train_unet(source_lat: torch.Tensor, target_lat: torch.Tensor, instructions: np.ndarray,
               tokenizer: nets.WordTokenizer, scaling: float, steps: int, batch: int, lr: float = 1e-3,
               start: dict | None = None, seed: int = 2, on_checkpoint=None,
               checkpoint_every: int = 0, seconds: float | None = None, edit_masks: np.ndarray | None = None,
               consistency: float = 0.0, cond_noise: float = 0.0, rolled: torch.Tensor | None = None,
               rolled_cases: torch.Tensor | None = None, rollout_share: float = 0.0,
               keep_on_dropout: bool = False) -> tuple[nets.UNet, nets.TextEncoder]:
    """InstructPix2Pix objective: eps-prediction on the SD schedule, image latent unscaled, noisy latent scaled,
    conditioning dropout (5% text, 5% image, 5% both) so dual classifier-free guidance works. `start`: the
    state dicts of a previous run's (EMA) UNet and text encoder to continue from.

    `consistency` > 0 (needs `edit_masks`): each case with an instruction is also predicted with the empty one, and
    the two are pulled together outside the edit region. Why: text guidance multiplies their difference by 7.5, so
    any disagreement outside the region is what an unmasked edit does to the rest of the image.

    `keep_on_dropout`: a case whose instruction is dropped but whose image is kept trains the source as its target.
    Why: the empty instruction is also what latent iteration and text guidance use as "no instruction". Trained on
    the edit's target (InstructPix2Pix's recipe), ε(image, "") learns the average over all edits, so sampling it
    now and then performs a random edit (a shape or the background flips colour after some rounds), and text
    guidance amplifies the edit minus that average, which is non-zero outside the edit region.

    `cond_noise` > 0: the image conditioning gets Gaussian noise of up to this fraction of the latents' spread (a
    uniform share of it per case) while the target stays clean. Why: latent iteration conditions on the sampler's
    own output, which is never exactly an encoder latent; a model that maps a slightly-off latent back to a clean one
    corrects that error each round instead of compounding it.

    `rolled` [M, R, 4, h, w] (`rollout_latents` of the sources of cases `rolled_cases`): a `rollout_share` of each
    batch is conditioned on one of those cases' rolled-out sources (a random round) with the case's own clean target,
    the real version of `cond_noise`'s idea."""
    text = nets.TextEncoder(len(tokenizer.vocab))
    unet = nets.UNet(context_dim=64)
    if start is not None:
        unet.load_state_dict(start["unet"])
        text.load_state_dict(start["text_encoder"])
    params = list(unet.parameters()) + list(text.parameters())
    log(f"unet params {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M, "
        f"text encoder {sum(p.numel() for p in text.parameters()) / 1e6:.3f} M")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    budget = Budget(steps, seconds, lr, 0.03)
    ema_unet, ema_text = copy.deepcopy(unet), copy.deepcopy(text)
    ac = nets.alphas_cumprod()
    ids_all = tokenizer.batch(list(instructions))
    empty_ids = tokenizer.batch([""])
    g = torch.Generator().manual_seed(seed)
    n = source_lat.shape[0]
    outside = None
    if consistency:
        factor = edit_masks.shape[-1] // source_lat.shape[-1]
        region = F.max_pool2d(torch.from_numpy(edit_masks)[:, None], factor)  # any edited pixel marks its latent
        region = F.max_pool2d(region, 3, stride=1, padding=1)  # and its neighbours: the decoder reads 3x3
        outside = (region < 0.5).float()
        log(f"consistency {consistency}: {outside.mean().item() * 100:.0f} % of latent positions outside the edits")
    t0 = time.time()
    for step in range(steps):
        if budget.apply(opt, step) is None:
            log(f"unet: time budget spent after {step} steps")
            break
        idx = torch.randint(0, n, (batch,), generator=g)
        c_img = source_lat[idx]  # unscaled image conditioning
        if rolled is not None:
            use = torch.rand(batch, generator=g) < rollout_share
            j = torch.randint(0, rolled.shape[0], (int(use.sum()),), generator=g)
            idx[use] = rolled_cases[j]
            c_img[use] = rolled[j, torch.randint(0, rolled.shape[1], (len(j),), generator=g)]
        z0 = target_lat[idx] * scaling  # scaled target latent
        ids = ids_all[idx].clone()
        u = torch.rand(batch, generator=g)
        drop_text = (u < 0.05) | (u >= 0.10) & (u < 0.15)
        drop_image = (u >= 0.05) & (u < 0.15)
        if keep_on_dropout:
            keep = drop_text & ~drop_image
            z0[keep] = source_lat[idx[keep]] * scaling
        ids[drop_text] = empty_ids
        if cond_noise:
            spread = cond_noise * torch.rand(batch, generator=g)[:, None, None, None] / scaling
            c_img = c_img + spread * torch.randn(c_img.shape, generator=g)
        c_img = c_img * (~drop_image).float()[:, None, None, None]
        t = torch.randint(0, 1000, (batch,), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        a = ac[t][:, None, None, None]
        # VP forward process; equivalent to the sigma form x = z0 + sigma*n scaled by 1/sqrt(sigma^2+1)
        noisy = a.sqrt() * z0 + (1 - a).sqrt() * noise
        eps = unet(torch.cat([noisy, c_img], dim=1), t.float(), text(ids))
        loss = F.mse_loss(eps, noise)
        if consistency:
            keep = ~drop_text
            k = int(keep.sum())
            eps_empty = unet(torch.cat([noisy[keep], c_img[keep]], dim=1), t[keep].float(), text(empty_ids.expand(k, -1)))
            out = outside[idx][keep]
            agree = ((eps[keep] - eps_empty) ** 2 * out).sum() / (out.sum() * eps.shape[1] + 1e-6)
            # no noise-prediction loss on eps_empty itself: its target would be the edit, and the empty instruction
            # must keep meaning "change nothing" (identity cases train it, and text dropout with --keep-on-dropout)
            loss = loss + consistency * agree
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema, live in ((ema_unet, unet), (ema_text, text)):
                for pe, pl in zip(ema.parameters(), live.parameters()):
                    pe.mul_(decay).add_(pl.detach(), alpha=1 - decay)
        if step % 250 == 0 or step == steps - 1:
            extra = f" (disagreement outside {agree.item():.5f})" if consistency else ""
            log(f"unet step {step}/{steps} loss {loss.item():.4f}{extra}  {time.time() - t0:.0f}s")
        if on_checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            on_checkpoint(step + 1, ema_unet, ema_text)
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
    ap.add_argument("--op-weights", help="training mix, e.g. recolour=0.4,background=0.2,remove=0.25,identity=0.05,"
                    "absent=0.1 (absent: an instruction naming a shape the scene lacks; nothing changes)")
    ap.add_argument("--twin", type=float, default=0.0, help="share of recolour/remove cases where another shape has "
                    "the named shape's colour (hard negatives)")
    ap.add_argument("--decoder-steps", type=int, default=0, help="with --resume: first fine-tune the VAE decoder alone "
                    "on the frozen encoder's latents for this many crop steps (+ --decoder-full-steps full images)")
    ap.add_argument("--decoder-full-steps", type=int, default=200)
    ap.add_argument("--decoder-lr", type=float, default=5e-4)
    ap.add_argument("--full-res-block", action="store_true", help="give the decoder a ResBlock at full resolution "
                    "(added as the identity when resuming a decoder without one)")
    ap.add_argument("--decoder-minutes", type=float, help="end the decoder phase after this long (annealed to fit)")
    ap.add_argument("--unet-minutes", type=float, help="end the UNet phase after this long (annealed to fit)")
    ap.add_argument("--checkpoint-every", type=int, default=0, help="also save the EMA UNet every N steps")
    ap.add_argument("--consistency", type=float, default=0.0, help="weight of the loss pulling the prediction with "
                    "the instruction towards the one with the empty instruction outside the edit region")
    ap.add_argument("--cond-noise", type=float, default=0.0, help="noise on the image conditioning, as a fraction "
                    "of the latents' spread (the target stays clean)")
    ap.add_argument("--rollout", type=int, default=0, help="with --resume: roll this many cases' sources through "
                    "--rollout-rounds rounds of latent iteration with the empty instruction, and train on them as "
                    "conditioning with the clean targets (cached in <work>/rollout.pt)")
    ap.add_argument("--rollout-rounds", type=int, default=4)
    ap.add_argument("--rollout-share", type=float, default=0.3, help="share of each batch conditioned on a rollout")
    ap.add_argument("--keep-on-dropout", action="store_true", help="text dropout with the image kept trains the "
                    "source as target, so the empty instruction means 'change nothing' (not 'some edit')")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="tiny smoke run to check the pipeline end to end")
    args = ap.parse_args()
    if args.quick:
        args.cases, args.vae_steps, args.vae_full_steps, args.unet_steps = 256, 20, 4, 20
        args.decoder_steps, args.decoder_full_steps = min(args.decoder_steps, 10), min(args.decoder_full_steps, 2)
    if (args.decoder_steps or args.rollout) and not args.resume:
        raise SystemExit("--decoder-steps and --rollout start from a trained model: they need --resume")
    op_weights = None
    if args.op_weights:
        op_weights = {k: float(v) for k, v in (item.split("=") for item in args.op_weights.split(","))}
        unknown = set(op_weights) - set(world.OPS) - {world.ABSENT}
        if unknown:
            raise SystemExit(f"unknown operations in --op-weights: {sorted(unknown)}")
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.time()

    log(f"dataset: {args.cases} cases at {args.size}px (seed {args.seed}, mix {op_weights or 'default'}, twin {args.twin})")
    data = make_dataset(args.cases, args.seed, args.size, op_weights, args.twin)
    images = np.concatenate([data["source"], data["target"]])

    start = None
    if args.resume:
        start = torch.load(args.resume, map_location="cpu")
        enc = nets.Encoder()
        enc.load_state_dict(start["encoder"])
        had_block = bool(start.get("decoder_full_res_block", False))
        dec = nets.Decoder(full_res_block=had_block or args.full_res_block)
        if args.full_res_block and not had_block:
            missing, unexpected = dec.load_state_dict(start["decoder"], strict=False)
            assert not unexpected and all(k.startswith(f"blocks.{len(dec.blocks) - 1}.") for k in missing), missing
            with torch.no_grad():  # the new block starts as the identity: skip + conv2(...) = x + 0
                dec.blocks[-1].conv2.weight.zero_()
                dec.blocks[-1].conv2.bias.zero_()
        else:
            dec.load_state_dict(start["decoder"])
        enc.eval(), dec.eval()
        scaling = float(start["scaling_factor"])  # the VAE is unchanged, so is its scaling
        log(f"resumed from {args.resume}: VAE kept, scaling_factor {scaling:.5f}")
        source_lat = encode_means(enc, data["source"])
        target_lat = encode_means(enc, data["target"])
    else:
        log("vae")
        enc, dec = train_vae(images, args.vae_steps, 16, 64, args.vae_full_steps, args.full_res_block)
        source_lat = encode_means(enc, data["source"])
        target_lat = encode_means(enc, data["target"])
        scaling = float(1.0 / torch.cat([source_lat, target_lat]).std())
        log(f"latent std {1 / scaling:.4f} -> scaling_factor {scaling:.5f}")

    tokenizer = nets.WordTokenizer(world.VOCABULARY)
    if start is not None and start["vocab"] != tokenizer.vocab:
        raise SystemExit("the checkpoint's vocabulary differs from shapes_world.VOCABULARY: cannot resume")
    previous = [] if start is None else start.get("history", [{"args": start.get("args"), "train_seconds": start.get("train_seconds")}])

    def save(path: str, unet_state: dict, text_state: dict, note: str) -> None:
        history = previous + [{"args": vars(args), "train_seconds": time.time() - started, "note": note}]
        torch.save({"encoder": enc.state_dict(), "decoder": dec.state_dict(), "unet": unet_state,
                    "text_encoder": text_state, "vocab": tokenizer.vocab, "scaling_factor": scaling,
                    "decoder_full_res_block": not isinstance(dec.blocks[-1], torch.nn.Identity),
                    "size": args.size, "args": vars(args), "train_seconds": time.time() - started, "history": history}, path)
        log(f"saved {path} ({note})")

    if args.decoder_steps:
        images = np.concatenate([data["source"], data["target"]])
        dec = finetune_decoder(dec, torch.cat([source_lat, target_lat]), images, args.decoder_steps,
                               args.decoder_full_steps, args.decoder_lr, seed=args.seed,
                               seconds=args.decoder_minutes and 60 * args.decoder_minutes)
        save(os.path.join(args.work, "decoder-only.pt"), start["unet"], start["text_encoder"], "decoder fine-tuned, UNet as resumed")

    def checkpoint(step: int, ema_unet: nets.UNet, ema_text: nets.TextEncoder) -> None:
        save(os.path.join(args.work, f"unet-{step}.pt"), ema_unet.state_dict(), ema_text.state_dict(), f"EMA after {step} UNet steps")

    rolled = rolled_cases = None
    if args.rollout:
        rolled_cases = torch.randperm(args.cases, generator=torch.Generator().manual_seed(args.seed))[:args.rollout]
        cache = os.path.join(args.work, "rollout.pt")
        key = {"seed": args.seed, "cases": args.cases, "rollout": args.rollout, "rounds": args.rollout_rounds,
               "resume": os.path.abspath(args.resume)}
        cached = torch.load(cache) if os.path.exists(cache) else None
        if cached is not None and cached["key"] == key:
            rolled = cached["latents"]
            log(f"rollout: {tuple(rolled.shape)} from {cache}")
        else:
            _, _, unet0, text0 = nets.networks_from_checkpoint(start)
            rolled = rollout_latents(unet0, text0, tokenizer, source_lat[rolled_cases], scaling, args.rollout_rounds,
                                     seed=args.seed)
            torch.save({"key": key, "latents": rolled}, cache)

    if args.unet_steps:
        unet, text = train_unet(source_lat, target_lat, data["instruction"], tokenizer, scaling, args.unet_steps, args.batch,
                                lr=args.unet_lr, start=start, seed=2 if start is None else args.seed,
                                on_checkpoint=checkpoint, checkpoint_every=args.checkpoint_every,
                                seconds=args.unet_minutes and 60 * args.unet_minutes,
                                edit_masks=data["mask"], consistency=args.consistency, cond_noise=args.cond_noise,
                                rolled=rolled, rolled_cases=rolled_cases, rollout_share=args.rollout_share,
                                keep_on_dropout=args.keep_on_dropout)
        unet_state, text_state = unet.state_dict(), text.state_dict()
    else:
        unet_state, text_state = start["unet"], start["text_encoder"]

    ckpt = os.path.join(args.work, "tiny-pix2pix.pt")
    save(ckpt, unet_state, text_state, "final")
    history = previous + [{"args": vars(args), "train_seconds": time.time() - started}]
    with open(os.path.join(args.work, "train_summary.json"), "w") as f:
        json.dump({"seconds": round(time.time() - started), "args": vars(args), "scaling_factor": scaling,
                   "history": history}, f, indent=2, default=str)
    log(f"saved {ckpt} after {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
