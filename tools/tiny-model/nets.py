"""The three networks of tiny-pix2pix: a KL-VAE (8x down, 4 latent channels), a word-level text
transformer, and an InstructPix2Pix conditional UNet (8 input channels, cross-attention at every level).

Plain torch ops only (no fused attention kernels) so the ONNX export is portable to every runtime.
"""
from __future__ import annotations

import json
import math
import re

import torch
import torch.nn.functional as F
from torch import nn

MAX_LENGTH = 77
BOS, EOS, UNK = "<|startoftext|>", "<|endoftext|>", "<|unk|>"


# ----------------------------------------------------------------------------- tokenizer

class WordTokenizer:
    """Word-level tokenizer with CLIP's framing: [BOS] words [EOS], padded with EOS to 77 ids.

    Mirrors the tokenizer.json it writes (WordLevel model, Lowercase normalizer, Whitespace pre-tokenizer),
    so the TypeScript engine can reproduce it from that file alone.
    """

    def __init__(self, words: list[str]):
        self.vocab = {BOS: 0, EOS: 1, UNK: 2}
        for w in words:
            self.vocab.setdefault(w, len(self.vocab))

    def encode(self, text: str) -> list[int]:
        words = re.findall(r"\w+|[^\w\s]+", text.lower())
        ids = [self.vocab.get(w, self.vocab[UNK]) for w in words][: MAX_LENGTH - 2]
        ids = [self.vocab[BOS]] + ids + [self.vocab[EOS]]
        return ids + [self.vocab[EOS]] * (MAX_LENGTH - len(ids))

    def batch(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.int64)

    def tokenizer_json(self) -> dict:
        special = [BOS, EOS, UNK]
        return {
            "version": "1.0",
            "truncation": {"direction": "Right", "max_length": MAX_LENGTH, "strategy": "LongestFirst", "stride": 0},
            "padding": {"strategy": {"Fixed": MAX_LENGTH}, "direction": "Right", "pad_to_multiple_of": None,
                        "pad_id": self.vocab[EOS], "pad_type_id": 0, "pad_token": EOS},
            "added_tokens": [{"id": self.vocab[t], "content": t, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": True} for t in special],
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": BOS, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": EOS, "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": BOS, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": EOS, "type_id": 0}}],
                "special_tokens": {t: {"id": t, "ids": [self.vocab[t]], "tokens": [t]} for t in (BOS, EOS)},
            },
            "decoder": None,
            "model": {"type": "WordLevel", "vocab": self.vocab, "unk_token": UNK},
        }

    def tokenizer_config_json(self) -> dict:
        return {"model_max_length": MAX_LENGTH, "bos_token": BOS, "eos_token": EOS, "pad_token": EOS,
                "unk_token": UNK, "tokenizer_class": "PreTrainedTokenizerFast", "do_lower_case": True}


# ----------------------------------------------------------------------------- shared blocks

def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels, eps=1e-5)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int | None = None):
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = group_norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout) if temb else None
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.temb is not None and emb is not None:
            h = h + self.temb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(context_dim or dim, dim, bias=False)
        self.v = nn.Linear(context_dim or dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        ctx = x if context is None else context
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).reshape(b, n, h, d // h).transpose(1, 2)
        k = self.k(ctx).reshape(b, ctx.shape[1], h, d // h).transpose(1, 2)
        v = self.v(ctx).reshape(b, ctx.shape[1], h, d // h).transpose(1, 2)
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), dim=-1)
        return self.out((w @ v).transpose(1, 2).reshape(b, n, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ----------------------------------------------------------------------------- VAE

class Encoder(nn.Module):
    """[B,3,H,W] in [-1,1] -> [B,8,H/8,W/8] = mean (4) || logvar (4)."""

    def __init__(self, ch=(16, 32, 64, 96)):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for cin, cout in zip(ch[:-1], ch[1:]):
            self.down.append(nn.Conv2d(cin, cout, 3, stride=2, padding=1))
            self.blocks.append(ResBlock(cout, cout))
        self.norm_out = group_norm(ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for down, block in zip(self.down, self.blocks):
            h = block(down(F.silu(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """[B,4,h,w] (unscaled latent) -> [B,3,8h,8w] in about [-1,1].

    `full_res_block`: a ResBlock at full resolution too (the first model had none there: shape edges came out
    soft). Added to a trained decoder it starts as the identity (its last conv zeroed), so fine-tuning starts
    from the old decoder's output."""

    def __init__(self, ch=(96, 64, 48, 24), full_res_block: bool = False):
        super().__init__()
        self.conv_in = nn.Conv2d(4, ch[0], 3, padding=1)
        self.mid = nn.ModuleList([ResBlock(ch[0], ch[0]), ResBlock(ch[0], ch[0])])
        self.up = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for i, (cin, cout) in enumerate(zip(ch[:-1], ch[1:])):
            self.up.append(nn.Conv2d(cin, cout, 3, padding=1))
            self.blocks.append(ResBlock(cout, cout) if i < len(ch) - 2 or full_res_block else nn.Identity())
        self.norm_out = group_norm(ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for up, block in zip(self.up, self.blocks):
            h = block(up(F.interpolate(h, scale_factor=2.0, mode="nearest")))
        return self.conv_out(F.silu(self.norm_out(h)))


# ----------------------------------------------------------------------------- text encoder

class TextEncoder(nn.Module):
    """input_ids [B,77] (int64) -> last_hidden_state [B,77,D], like CLIP's text model (causal attention)."""

    def __init__(self, vocab_size: int, dim: int = 64, layers: int = 2):
        super().__init__()
        self.token = nn.Embedding(vocab_size, dim)
        self.position = nn.Parameter(torch.randn(MAX_LENGTH, dim) * 0.02)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            self.layers.append(nn.ModuleDict({"n1": nn.LayerNorm(dim), "attn": Attention(dim),
                                              "n2": nn.LayerNorm(dim), "ff": FeedForward(dim)}))
        self.norm = nn.LayerNorm(dim)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.token(input_ids) + self.position[: input_ids.shape[1]]
        for layer in self.layers:
            x = x + layer["attn"](layer["n1"](x))
            x = x + layer["ff"](layer["n2"](x))
        return self.norm(x)


# ----------------------------------------------------------------------------- UNet

class SpatialTransformer(nn.Module):
    """Self-attention, cross-attention to the text states, feed-forward; on [B,C,H,W]."""

    def __init__(self, ch: int, context_dim: int):
        super().__init__()
        self.norm = group_norm(ch)
        self.n1, self.self_attn = nn.LayerNorm(ch), Attention(ch)
        self.n2, self.cross_attn = nn.LayerNorm(ch), Attention(ch, context_dim)
        self.n3, self.ff = nn.LayerNorm(ch), FeedForward(ch)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        t = t + self.self_attn(self.n1(t))
        t = t + self.cross_attn(self.n2(t), context)
        t = t + self.ff(self.n3(t))
        return x + t.transpose(1, 2).reshape(b, c, h, w)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps [B] -> [B, dim], as in SD (flip_sin_to_cos)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class UNet(nn.Module):
    """sample [B,8,h,w] = (noisy latent / sqrt(sigma^2+1) || unscaled image latent), timestep [B], text [B,77,D]
    -> predicted noise [B,4,h,w]."""

    def __init__(self, context_dim: int = 64, ch=(32, 64, 96), in_channels: int = 8):
        super().__init__()
        self.ch = ch
        temb = ch[0] * 4
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(in_channels, ch[0], 3, padding=1)
        self.down_res, self.down_attn, self.downsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        prev = ch[0]
        for i, c in enumerate(ch):
            self.down_res.append(ResBlock(prev, c, temb))
            self.down_attn.append(SpatialTransformer(c, context_dim))
            self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1) if i < len(ch) - 1 else nn.Identity())
            prev = c
        self.mid_res1 = ResBlock(ch[-1], ch[-1], temb)
        self.mid_attn = SpatialTransformer(ch[-1], context_dim)
        self.mid_res2 = ResBlock(ch[-1], ch[-1], temb)
        self.up_res, self.up_attn, self.upsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i, c in reversed(list(enumerate(ch))):
            self.up_res.append(ResBlock(prev + c, c, temb))
            self.up_attn.append(SpatialTransformer(c, context_dim))
            self.upsample.append(nn.Conv2d(c, ch[i - 1], 3, padding=1) if i > 0 else nn.Identity())
            prev = ch[i - 1] if i > 0 else c
        self.norm_out = group_norm(ch[0])
        self.conv_out = nn.Conv2d(ch[0], 4, 3, padding=1)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        timestep = timestep.reshape(-1).expand(sample.shape[0])  # accepts [B], [1] or [] like diffusers' UNet
        emb = self.time_mlp(timestep_embedding(timestep, self.ch[0]))
        h = self.conv_in(sample)
        skips = []
        for res, attn, down in zip(self.down_res, self.down_attn, self.downsample):
            h = attn(res(h, emb), encoder_hidden_states)
            skips.append(h)
            h = down(h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, emb), encoder_hidden_states), emb)
        for res, attn, up in zip(self.up_res, self.up_attn, self.upsample):
            h = attn(res(torch.cat([h, skips.pop()], dim=1), emb), encoder_hidden_states)
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


# ----------------------------------------------------------------------------- SD training schedule

def alphas_cumprod(steps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def networks_from_checkpoint(ckpt: dict) -> tuple[Encoder, Decoder, UNet, TextEncoder]:
    """The four networks of a `train.py` checkpoint, weights loaded, in eval mode."""
    enc, dec = Encoder(), Decoder(full_res_block=ckpt.get("decoder_full_res_block", False))
    unet, text = UNet(context_dim=64), TextEncoder(len(ckpt["vocab"]))
    for net, key in ((enc, "encoder"), (dec, "decoder"), (unet, "unet"), (text, "text_encoder")):
        net.load_state_dict(ckpt[key])
        net.eval()
    return enc, dec, unet, text


def write_json(path, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
