"""Train tiny-clipseg on shapes-world referring phrases (fresh cases every step), within a time budget.

    nice -n 10 python tools/segmenter/train_segmenter.py --out /tmp/seg.pt --minutes 35

One thread (the build machine is shared). Loss: binary cross-entropy against the soft region plus a soft-IoU
term (small shapes count as much as the background). Saves the checkpoint every 500 steps and at the end.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import phrases
from net import IMAGE_MEAN, IMAGE_STD, TinyClipSeg

import nets  # tools/tiny-model (phrases put it on the path): the word tokenizer with CLIP framing

SIZE = 128


def tokenizer() -> nets.WordTokenizer:
    return nets.WordTokenizer(phrases.VOCABULARY)


def normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> CLIPSeg pixel_values [B, 3, H, W]."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(IMAGE_MEAN)[:, None, None]) / torch.tensor(IMAGE_STD)[:, None, None]


def encode(tok: nets.WordTokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = tok.batch(texts)
    eos = tok.vocab[nets.EOS]
    # attention over BOS, the words and the first EOS (what CLIPTokenizer's attention_mask marks).
    lengths = torch.tensor([len(t.lower().split()) + 2 for t in texts])
    attention = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).to(torch.int64)
    assert bool((ids[torch.arange(len(texts)), lengths - 1] == eos).all())
    return ids, attention


def sample_batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    images, texts, regions = [], [], []
    for _ in range(n):
        # Some cases drawn at another size and resized to the model's, as layers are before they reach it.
        size = SIZE if rng.random() < 0.7 else int(rng.integers(80, 257))
        q = phrases.random_query(rng, size)
        image, region = q.image, q.region
        if size != SIZE:
            image = np.asarray(Image.fromarray(image).resize((SIZE, SIZE), Image.BILINEAR))
            region = np.asarray(Image.fromarray(region).resize((SIZE, SIZE), Image.BILINEAR))
        images.append(image)
        texts.append(q.phrase)
        regions.append(region)
    return np.stack(images), texts, np.stack(regions).astype(np.float32)


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2))
    union = (p + target - p * target).sum((1, 2))
    has = target.sum((1, 2)) > 0
    soft_iou = torch.where(has, 1 - inter / union.clamp(min=1e-6), p.mean((1, 2)))
    return bce + 0.5 * soft_iou.mean()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=35)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=2718)
    ap.add_argument("--max-steps", type=int, default=100_000)
    ap.add_argument("--resume", help="a checkpoint to continue from (its weights; steps and seconds add up)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    tok = tokenizer()
    model = TinyClipSeg(len(tok.vocab))
    before = {"steps": 0, "seconds": 0}
    if args.resume:
        ckpt = torch.load(args.resume, weights_only=False)
        assert ckpt["vocab"] == tok.vocab, "the checkpoint's vocabulary differs from phrases.VOCABULARY"
        model.load_state_dict(ckpt["model"])
        before = {"steps": ckpt["steps"], "seconds": ckpt["seconds"]}
        print(f"resuming {args.resume}: {before['steps']} steps, {before['seconds']} s so far", flush=True)
    params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {params}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    start = time.time()
    budget = args.minutes * 60
    step, running = 0, None
    while step < args.max_steps and time.time() - start < budget:
        # cosine decay over the time budget (the step count is not known in advance)
        frac = min(1.0, (time.time() - start) / budget)
        for g in opt.param_groups:
            g["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac)))
        images, texts, regions = sample_batch(rng, args.batch)
        ids, attention = encode(tok, texts)
        logits = model(ids, normalise(images), attention)
        loss = loss_fn(logits, torch.from_numpy(regions))
        opt.zero_grad()
        loss.backward()
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        step += 1
        if step % 100 == 0:
            print(f"step {step} loss {running:.4f} {time.time() - start:.0f}s lr {opt.param_groups[0]['lr']:.2e}", flush=True)
        if step % 500 == 0:
            save(args.out, model, tok, before["steps"] + step, before["seconds"] + time.time() - start, args)
    save(args.out, model, tok, before["steps"] + step, before["seconds"] + time.time() - start, args)
    print(f"done: {step} steps in {time.time() - start:.0f}s", flush=True)


def save(path: str, model: TinyClipSeg, tok: nets.WordTokenizer, step: int, seconds: float, args) -> None:
    torch.save({"model": model.state_dict(), "vocab": tok.vocab, "size": SIZE, "steps": step,
                "seconds": round(seconds), "args": vars(args)}, path)


if __name__ == "__main__":
    main()
