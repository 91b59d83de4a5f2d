"""Train tiny-flux2-klein on the shapes world with diffusers' own classes, so the export tool takes it unchanged.

    PYTHONPATH=/work/scratch/diffusers/src nice -n 10 python tools/tiny-klein/train.py --work /tmp/klein-train \
        --stop-at 16:05                       # full run (VAE, then the transformer + text encoder)
    ... train.py --work /tmp/klein-smoke --quick                     # smoke run (a minute or two)
    ... train.py --work /tmp/klein-train --resume [--flow-steps N]   # continue from <work>/state.pt
    ... train.py --work /tmp/klein-train --resume --decoder-steps N  # then: fine-tune the VAE decoder only

Phases (one thread, `torch.set_num_threads(1)`):
  1. VAE (AutoencoderKLFlux2): reconstruction (MSE + 0.1 L1) and a small KL on 64 px crops, then full images;
     then its batch-norm statistics (`vae.bn`, over the 2x2-patchified latent means of the training images),
     which the pipeline uses to normalise latents.
  2. Transformer (Flux2Transformer2DModel) and text encoder (Qwen3ForCausalLM) jointly, rectified flow as
     Flux2KleinPipeline implies: x_s = (1 - s) x0 + s n, the transformer predicts n - x0 from
     [noisy target tokens, source tokens] with the pipeline's position ids (target t = 0, the source as reference
     image 0 at t = 10), timestep s (the pipeline passes t / 1000 = sigma) and the chat-templated instruction's
     stacked hidden states. The empty instruction's cases (target = source) are the unconditional model.
     Sigmas are drawn half uniformly, half through the exponential shift the scheduler applies at sampling time,
     so the few high-noise steps a 4-step sampler takes are well trained. The loss is weighted up on the tokens
     the edit touches (1 + 4 x the edit mask pooled to the token grid): edits cover a few percent of the image.
  3. (optional, --decoder-steps with --resume) the VAE decoder alone, the encoder frozen: the latents, their
     batch-norm statistics and so the transformer's whole world stay exactly as trained; only the pixels a latent
     decodes to get sharper. Updates <work>/state.pt and the vae/ of both diffusers folders.
  Checkpoints (EMA weights, optimiser state) land in <work>/state.pt every --checkpoint-every steps, with a
  diffusers `save_pretrained` folder in <work>/diffusers (latest) and <work>/diffusers-best (best quick
  evaluation: 48 validation cases sampled with 4 steps, decoded, scored as evaluate.py scores them).
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tiny-model"))
sys.path.insert(0, HERE)
import shapes_world as world  # noqa: E402
from build_tiny_klein import train_tokenizer  # noqa: E402

from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel  # noqa: E402
from transformers import Qwen3Config, Qwen3ForCausalLM  # noqa: E402

P = Flux2KleinPipeline  # its static helpers are the reference for ids, patchify and packing
OUT_LAYERS = (1, 2)
MAX_LEN = 32
VALIDATION_SEED = 777  # training uses --seed (1234); evaluation's held-out seed 20261124 is never used here


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def corpus() -> list[str]:
    """Every instruction the shapes world can produce, chat-templated as the pipeline sends it."""
    words = []
    for t in world.RECOLOUR_TEMPLATES:
        words += [t.format(s=s, c=c) for s in world.SHAPES for c in world.COLOUR_NAMES]
    for t in world.BACKGROUND_TEMPLATES:
        words += [t.format(c=c) for c in world.COLOUR_NAMES]
    for t in world.REMOVE_TEMPLATES:
        words += [t.format(s=s) for s in world.SHAPES]
    return [f"<|im_start|>user\n{w}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n" for w in words + [""]]


def build_modules(vocab: int, pad_id: int, rope_theta: float = 16.0) -> tuple[AutoencoderKLFlux2, Qwen3ForCausalLM, Flux2Transformer2DModel]:
    """rope_theta: with 16-wide heads each position axis gets 2 rotary frequencies, 1 and theta^-1/2 per position;
    at klein's 2000 the second is ~0.02 and rows 6 apart look alike (cos 6 = 0.96) to a 1-rad frequency alone,
    so a target token cannot find its own source token; at 16 the pair (1, 0.25) tells 16 positions apart."""
    vae = AutoencoderKLFlux2(block_out_channels=(16, 32, 32, 32), layers_per_block=1, latent_channels=32,
                             norm_num_groups=8, mid_block_add_attention=False, sample_size=128)
    text = Qwen3ForCausalLM(Qwen3Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                        max_position_embeddings=MAX_LEN, tie_word_embeddings=True, pad_token_id=pad_id))
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=128, num_layers=2, num_single_layers=2, attention_head_dim=16, num_attention_heads=6,
        joint_attention_dim=len(OUT_LAYERS) * 64, timestep_guidance_channels=64, mlp_ratio=3.0,
        axes_dims_rope=(4, 4, 4, 4), rope_theta=rope_theta, guidance_embeds=False)
    return vae, text, transformer


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 [N,H,W,3] -> float [N,3,H,W] in [-1,1], as the pipeline's image processor gives."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def from_unit(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).to(torch.uint8).numpy()


def make_cases(n: int, seed: int, size: int) -> list[world.Case]:
    rng = np.random.default_rng(seed)
    return [world.random_case(rng, size) for _ in range(n)]


def train_vae(vae: AutoencoderKLFlux2, images: np.ndarray, steps: int, full_steps: int, batch: int, g: torch.Generator) -> None:
    with torch.no_grad():  # start with a small posterior std: at std 1 the latent is mostly noise and AdamW's
        vae.quant_conv.bias[vae.config.latent_channels:].fill_(-6.0)  # small steps take ages to shrink it
    params = list(vae.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
    total = steps + full_steps
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=total, pct_start=0.05)
    n, size = images.shape[0], images.shape[1]
    vae.train()
    t0 = time.time()
    for step in range(total):
        c = 64 if step < steps else size  # mostly crops (cheap), then full images (borders, context)
        b = batch if step < steps else max(batch // 4, 2)
        idx = torch.randint(0, n, (b,), generator=g).numpy()
        y0, x0 = (int(torch.randint(0, size - c + 1, (1,), generator=g)) // 16 * 16 for _ in range(2))
        x = to_unit(images[idx, y0:y0 + c, x0:x0 + c])
        dist = vae.encode(x).latent_dist
        z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=g)
        rec = vae.decode(z).sample
        kl = 0.5 * torch.mean(dist.mean ** 2 + dist.var - 1 - dist.logvar)
        loss = F.mse_loss(rec, x) + 0.1 * F.l1_loss(rec, x) + 1e-6 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == total - 1:
            with torch.no_grad():
                psnr = 10 * math.log10(4.0 / max(F.mse_loss(vae.decode(dist.mean).sample, x).item(), 1e-10))
            log(f"vae step {step}/{total} loss {loss.item():.5f} psnr(mean) {psnr:.2f} dB  {time.time() - t0:.0f}s")
    vae.eval()


def finetune_decoder(vae: AutoencoderKLFlux2, images: np.ndarray, steps: int, batch: int, g: torch.Generator, stop_at: float) -> int:
    """Decoder + post_quant_conv on the encoder's means (frozen), 64 px crops then full images; returns steps run."""
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.05)
    n, size = images.shape[0], images.shape[1]
    t0 = time.time()
    step = 0
    for step in range(steps):
        if time.time() >= stop_at:
            break
        c = 64 if step < steps * 0.8 else size
        b = batch if c == 64 else max(batch // 4, 2)
        idx = torch.randint(0, n, (b,), generator=g).numpy()
        y0, x0 = (int(torch.randint(0, size - c + 1, (1,), generator=g)) // 16 * 16 for _ in range(2))
        x = to_unit(images[idx, y0:y0 + c, x0:x0 + c])
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
        rec = vae.decode(z).sample
        loss = F.mse_loss(rec, x) + 0.1 * F.l1_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0:
            log(f"decoder step {step}/{steps} loss {loss.item():.5f} psnr {10 * math.log10(4.0 / max(F.mse_loss(rec.detach(), x).item(), 1e-10)):.2f} dB  {time.time() - t0:.0f}s")
    vae.eval()
    return step + 1


@torch.no_grad()
def patchified_means(vae: AutoencoderKLFlux2, images: np.ndarray, batch: int = 32) -> torch.Tensor:
    """[N, 128, H/16, W/16]: the encoder's means (the pipeline's sample_mode="argmax"), 2x2-patchified."""
    return torch.cat([P._patchify_latents(vae.encode(to_unit(images[i:i + batch])).latent_dist.mode())
                      for i in range(0, len(images), batch)])


def set_bn_stats(vae: AutoencoderKLFlux2, latents: torch.Tensor) -> None:
    with torch.no_grad():
        vae.bn.running_mean.copy_(latents.mean(dim=(0, 2, 3)))
        vae.bn.running_var.copy_(latents.var(dim=(0, 2, 3)))


def normalise(vae: AutoencoderKLFlux2, patchified: torch.Tensor) -> torch.Tensor:
    mean = vae.bn.running_mean.view(1, -1, 1, 1)
    std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps)
    return (patchified - mean) / std


def denormalise(vae: AutoencoderKLFlux2, tokens: torch.Tensor) -> torch.Tensor:
    mean = vae.bn.running_mean.view(1, -1, 1, 1)
    std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps)
    return tokens * std + mean


def tokenize(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Exactly what _get_qwen3_prompt_embeds does before the text encoder."""
    ids, masks = [], []
    for p in prompts:
        text = tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True,
                                             enable_thinking=False)
        t = tokenizer(text, return_tensors="pt", padding="max_length", truncation=True, max_length=MAX_LEN)
        ids.append(t["input_ids"])
        masks.append(t["attention_mask"])
    return torch.cat(ids), torch.cat(masks)


def prompt_embeds(text: Qwen3ForCausalLM, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = text(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
    stacked = torch.stack([out.hidden_states[k] for k in OUT_LAYERS], dim=1)
    b, c, t, d = stacked.shape
    return stacked.permute(0, 2, 1, 3).reshape(b, t, c * d)


def shifted(sigmas: torch.Tensor, mu: float) -> torch.Tensor:
    """The scheduler's exponential time shift: e^mu / (e^mu + 1/s - 1)."""
    return math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1))


def sampling_sigmas(steps: int, tokens: int) -> list[float]:
    from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu
    base = torch.from_numpy(np.linspace(1.0, 1 / steps, steps)).float()
    return shifted(base, compute_empirical_mu(tokens, steps)).tolist() + [0.0]


class FlowModel:
    """The transformer call as Flux2KleinPipeline makes it, for one grid size."""

    def __init__(self, grid: int):
        self.grid = grid
        shape = torch.zeros(1, 128, grid, grid)
        self.img_ids = torch.cat([P._prepare_latent_ids(shape), P._prepare_image_ids([shape])], dim=1)[0]
        self.txt_ids = P._prepare_text_ids(torch.zeros(1, MAX_LEN, 1))[0]

    def velocity(self, transformer, x: torch.Tensor, ref: torch.Tensor, sigma: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        out = transformer(hidden_states=torch.cat([x, ref], dim=1), encoder_hidden_states=emb, timestep=sigma,
                          img_ids=self.img_ids, txt_ids=self.txt_ids, guidance=None, return_dict=False)[0]
        return out[:, :n]


def token_mask(masks: np.ndarray, grid: int) -> torch.Tensor:
    """The pixel edit masks [N,H,W] max-pooled to the token grid: [N, grid*grid]."""
    m = torch.from_numpy(masks)[:, None]
    return F.adaptive_max_pool2d(m, grid).flatten(1)


@torch.no_grad()
def quick_eval(vae, text, transformer, flow: FlowModel, val: dict, tokenizer, steps: int = 4) -> dict:
    sig = sampling_sigmas(steps, flow.grid * flow.grid)
    ids, mask = tokenize(tokenizer, val["instructions"])
    emb = prompt_embeds(text, ids, mask)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(val["source"].shape, generator=g)
    for s, s_next in zip(sig[:-1], sig[1:]):
        v = flow.velocity(transformer, x, val["source"], torch.full((x.shape[0],), s), emb)
        x = x + (s_next - s) * v
    b, n, c = x.shape
    lat = x.permute(0, 2, 1).reshape(b, c, flow.grid, flow.grid)
    out = from_unit(vae.decode(P._unpatchify_latents(denormalise(vae, lat))).sample)
    res: dict[str, list] = {op: [] for op in world.OPS}
    for i, case in enumerate(val["cases"]):
        o = out[i]
        if case.op == "identity":
            res[case.op].append(world.psnr(o, case.source))
        elif case.op == "recolour":
            res[case.op].append(world.nearest_palette_colour(o[case.interior].mean(axis=0)) == case.colour)
        elif case.op == "background":
            res[case.op].append(world.nearest_palette_colour(o[case.mask >= 0.999].mean(axis=0)) == case.colour)
        else:
            before = world.nearest_palette_colour(case.source[case.interior].mean(axis=0))
            res[case.op].append(world.nearest_palette_colour(o[case.interior].mean(axis=0)) != before)
    outside = [world.psnr(out[i], c.source, c.mask <= 0) for i, c in enumerate(val["cases"]) if c.op in ("recolour", "remove")]
    r = {"identity_psnr": float(np.mean(res["identity"])), "outside_psnr": float(np.mean(outside))}
    for op in ("recolour", "background", "remove"):
        r[op] = float(np.mean(res[op]))
    r["score"] = (r["recolour"] + r["background"] + r["remove"]) / 3 + 0.02 * min(r["identity_psnr"], 30) + 0.01 * min(r["outside_psnr"], 30)
    return r


def save_diffusers(path: str, vae, text, transformer, tokenizer) -> None:
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True,
                                                time_shift_type="exponential")
    pipe = Flux2KleinPipeline(scheduler=scheduler, vae=vae, text_encoder=text, tokenizer=tokenizer,
                              transformer=transformer, is_distilled=True)
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def deadline(hhmm: str | None) -> float:
    if not hhmm:
        return float("inf")
    now = dt.datetime.now(dt.timezone.utc)
    h, m = (int(x) for x in hhmm.split(":"))
    at = now.replace(hour=h, minute=m, second=0, microsecond=0)
    return at.timestamp()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--vae-steps", type=int, default=1500)
    ap.add_argument("--vae-full-steps", type=int, default=150)
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--flow-steps", type=int, default=12000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--edit-weight", type=float, default=4.0, help="extra loss weight on tokens the edit touches")
    ap.add_argument("--rope-theta", type=float, default=16.0, help="the transformer's rotary base (see build_modules)")
    ap.add_argument("--decoder-steps", type=int, default=0, help="with --resume: fine-tune the VAE decoder alone, then stop")
    ap.add_argument("--checkpoint-every", type=int, default=500)
    ap.add_argument("--stop-at", help="HH:MM UTC: checkpoint and stop at this time whatever the step")
    ap.add_argument("--resume", action="store_true", help="continue from <work>/state.pt")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny data and step counts")
    args = ap.parse_args()
    if args.quick:
        args.cases, args.vae_steps, args.vae_full_steps, args.flow_steps, args.checkpoint_every = 96, 10, 2, 20, 10
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    os.makedirs(args.work, exist_ok=True)
    stop_at = deadline(args.stop_at)
    state_path = os.path.join(args.work, "state.pt")
    started = time.time()

    tokenizer = train_tokenizer(384, corpus())
    tokenizer.model_max_length = MAX_LEN
    vae, text, transformer = build_modules(len(tokenizer), tokenizer.pad_token_id, args.rope_theta)
    log(f"params: vae {sum(p.numel() for p in vae.parameters()) / 1e6:.3f} M, text encoder "
        f"{sum(p.numel() for p in text.parameters()) / 1e6:.3f} M, transformer {sum(p.numel() for p in transformer.parameters()) / 1e6:.3f} M")

    log(f"dataset: {args.cases} cases at 128 px (seed {args.seed})")
    cases = make_cases(args.cases, args.seed, 128)
    val_cases = []
    rng = np.random.default_rng(VALIDATION_SEED)
    for k in range(48):
        val_cases.append(world.random_case(rng, 128, world.OPS[k % 4]))

    state = torch.load(state_path, map_location="cpu", weights_only=False) if args.resume else None
    g = torch.Generator().manual_seed(args.seed)
    if state is not None:
        vae.load_state_dict(state["vae"])
        vae.eval()
        log(f"resumed from {state_path} at flow step {state['step']}")
    else:
        images = np.concatenate([np.stack([c.source for c in cases]), np.stack([c.target for c in cases])])
        log("phase 1: VAE")
        train_vae(vae, images, args.vae_steps, args.vae_full_steps, args.vae_batch, g)
    if state is not None and args.decoder_steps:
        images = np.concatenate([np.stack([c.source for c in cases]), np.stack([c.target for c in cases])])
        vae.train()
        ran = finetune_decoder(vae, images, args.decoder_steps, args.vae_batch, g, stop_at)
        with torch.no_grad():
            x = to_unit(np.stack([c.source for c in val_cases]))
            rt = from_unit(vae.decode(vae.encode(x).latent_dist.mode()).sample)
            vae_psnr = float(np.mean([world.psnr(o, c.source) for o, c in zip(rt, val_cases)]))
        log(f"decoder fine-tuned for {ran} steps: VAE round trip on validation images {vae_psnr:.2f} dB")
        state["vae"] = vae.state_dict()
        state["vae_psnr"] = vae_psnr
        state["history"].append({"decoder_finetune": {"steps": ran, "vae_psnr": vae_psnr, "args": vars(args)}})
        torch.save(state, state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)
        for folder in ("diffusers", "diffusers-best"):
            if os.path.isdir(os.path.join(args.work, folder)):
                vae.save_pretrained(os.path.join(args.work, folder, "vae"))
        with open(os.path.join(args.work, "history.json"), "w") as f:
            json.dump({"vae_roundtrip_psnr_validation": vae_psnr, "best": state.get("best"), "history": state["history"]}, f, indent=2, default=str)
        return
    log("encoding the dataset")
    src = patchified_means(vae, np.stack([c.source for c in cases]))
    tgt = patchified_means(vae, np.stack([c.target for c in cases]))
    if state is None:
        set_bn_stats(vae, torch.cat([src, tgt]))
    grid = src.shape[-1]
    src_tok = P._pack_latents(normalise(vae, src)).contiguous()
    tgt_tok = P._pack_latents(normalise(vae, tgt)).contiguous()
    del src, tgt
    with torch.no_grad():
        val_src = P._pack_latents(normalise(vae, patchified_means(vae, np.stack([c.source for c in val_cases]))))
        rt = vae.decode(P._unpatchify_latents(denormalise(vae, val_src.permute(0, 2, 1).reshape(-1, 128, grid, grid)))).sample
        vae_psnr = float(np.mean([world.psnr(o, c.source) for o, c in zip(from_unit(rt), val_cases)]))
    log(f"VAE round trip on validation images (through the bn normalisation): {vae_psnr:.2f} dB")
    val = {"cases": val_cases, "source": val_src, "instructions": [c.instruction for c in val_cases]}

    ids_all, mask_all = tokenize(tokenizer, [c.instruction for c in cases])
    weights = 1 + args.edit_weight * token_mask(np.stack([c.mask for c in cases]), grid)
    del cases
    flow = FlowModel(grid)

    ema_text, ema_tr = copy.deepcopy(text), copy.deepcopy(transformer)
    params = list(text.parameters()) + list(transformer.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warmup = max(1, min(300, args.flow_steps // 20))
    lr_at = lambda s: args.lr * min(1.0, (s + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, args.flow_steps) / args.flow_steps)))  # noqa: E731
    step, history, best = 0, [], None
    if state is not None:
        text.load_state_dict(state["text"])
        transformer.load_state_dict(state["transformer"])
        ema_text.load_state_dict(state["ema_text"])
        ema_tr.load_state_dict(state["ema_transformer"])
        opt.load_state_dict(state["opt"])
        step, history, best = state["step"], state["history"], state.get("best")
        g.set_state(state["rng"])
    history.append({"args": vars(args), "started_step": step, "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())})

    def checkpoint() -> None:
        nonlocal best
        ema_text.eval(), ema_tr.eval()
        q = quick_eval(vae, ema_text, ema_tr, flow, val, tokenizer)
        q["step"] = step
        history[-1].setdefault("evals", []).append(q)
        log(f"eval step {step}: " + json.dumps({k: round(v, 3) for k, v in q.items()}))
        save_diffusers(os.path.join(args.work, "diffusers"), vae, ema_text, ema_tr, tokenizer)
        if best is None or q["score"] >= best["score"]:
            best = q
            save_diffusers(os.path.join(args.work, "diffusers-best"), vae, ema_text, ema_tr, tokenizer)
        history[-1]["ended_step"] = step
        history[-1]["seconds"] = round(time.time() - started)
        torch.save({"vae": vae.state_dict(), "text": text.state_dict(), "transformer": transformer.state_dict(),
                    "ema_text": ema_text.state_dict(), "ema_transformer": ema_tr.state_dict(), "opt": opt.state_dict(),
                    "step": step, "history": history, "best": best, "rng": g.get_state(), "vae_psnr": vae_psnr},
                   state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)
        with open(os.path.join(args.work, "history.json"), "w") as f:
            json.dump({"vae_roundtrip_psnr_validation": vae_psnr, "best": best, "history": history}, f, indent=2, default=str)

    log(f"phase 2: transformer + text encoder, steps {step}..{args.flow_steps}, batch {args.batch}")
    text.train(), transformer.train()
    n = src_tok.shape[0]
    t0 = time.time()
    while step < args.flow_steps and time.time() < stop_at:
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        idx = torch.randint(0, n, (args.batch,), generator=g)
        x0, ref, w = tgt_tok[idx], src_tok[idx], weights[idx]
        u = torch.rand(args.batch, generator=g).clamp(1e-4, 1 - 1e-4)
        half = torch.rand(args.batch, generator=g) < 0.5
        sigma = torch.where(half, u, shifted(u, 1.5))
        noise = torch.randn(x0.shape, generator=g)
        s = sigma[:, None, None]
        xs = (1 - s) * x0 + s * noise
        emb = prompt_embeds(text, ids_all[idx], mask_all[idx])
        v = flow.velocity(transformer, xs, ref, sigma, emb)
        loss = ((v - (noise - x0)) ** 2).mean(dim=2).mul(w).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema, live in ((ema_text, text), (ema_tr, transformer)):
                for pe, pl in zip(ema.parameters(), live.parameters()):
                    pe.mul_(decay).add_(pl.detach(), alpha=1 - decay)
        if step % 50 == 0:
            log(f"flow step {step}/{args.flow_steps} loss {loss.item():.4f} lr {lr_at(step):.2e}  {(time.time() - t0) / max(step - history[-1]['started_step'], 1):.2f} s/step")
        if step % args.checkpoint_every == 0:
            checkpoint()
            text.train(), transformer.train()
    if history[-1].get("ended_step") != step:
        checkpoint()
    log(f"done at step {step} after {time.time() - started:.0f}s; best {json.dumps(best)}")


if __name__ == "__main__":
    main()
