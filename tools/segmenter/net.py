"""tiny-clipseg: a text-conditioned segmenter with CLIPSeg's ONNX interface.

    input_ids [B, T] int64, attention_mask [B, T] int64, pixel_values [B, 3, S, S] float32 -> logits [B, S, S]

What CLIPSeg does with a ViT and a CLIP text tower, done small: a word embedding averaged over the attention
mask, an MLP that turns it into per-channel scales and shifts (FiLM) for every level of a small conv
encoder-decoder, and a per-pixel head at full resolution that sees the pixel's own colour (sharp edges).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# CLIPSeg's preprocessing (ViTImageProcessor in CIDAS/clipseg-rd64-refined), at this model's own size.
IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]


class FilmBlock(nn.Module):
    """conv (stride s) -> GroupNorm without affine -> FiLM from the text -> SiLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(min(8, cout), cout, affine=False)
        self.channels = cout

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        scale, shift = film.chunk(2, dim=1)
        h = self.norm(self.conv(x))
        return F.silu(h * (1 + scale[:, :, None, None]) + shift[:, :, None, None])


class TinyClipSeg(nn.Module):
    def __init__(self, vocab_size: int, width: tuple[int, ...] = (16, 24, 40, 64), text_dim: int = 48):
        super().__init__()
        c1, c2, c3, c4 = width
        self.embed = nn.Embedding(vocab_size, text_dim)
        self.enc = nn.ModuleList([FilmBlock(3, c1, 2), FilmBlock(c1, c2, 2), FilmBlock(c2, c3, 2), FilmBlock(c3, c4, 2)])
        self.mid = FilmBlock(c4, c4)
        self.dec = nn.ModuleList([FilmBlock(c4 + c3, c3), FilmBlock(c3 + c2, c2), FilmBlock(c2 + c1, c1)])
        self.blocks = [*self.enc, self.mid, *self.dec]
        film_size = 2 * sum(b.channels for b in self.blocks)
        self.text = nn.Sequential(nn.Linear(text_dim, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, film_size))
        self.head = nn.Sequential(nn.Conv2d(c1 + 3, 16, 1), nn.SiLU(), nn.Conv2d(16, 1, 1))

    def films(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        m = attention_mask.to(torch.float32)[:, :, None]
        pooled = (self.embed(input_ids) * m).sum(1) / m.sum(1).clamp(min=1.0)
        return list(self.text(pooled).split([2 * b.channels for b in self.blocks], dim=1))

    def forward(self, input_ids: torch.Tensor, pixel_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        films = self.films(input_ids, attention_mask)
        skips = []
        h = pixel_values
        for i, block in enumerate(self.enc):
            h = block(h, films[i])
            skips.append(h)
        h = self.mid(h, films[4])
        for j, block in enumerate(self.dec):
            skip = skips[-2 - j]
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], dim=1), films[5 + j])
        h = F.interpolate(h, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([h, pixel_values], dim=1)).squeeze(1)  # [B, S, S], like CLIPSeg's logits
