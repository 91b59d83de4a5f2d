"""Tiny FLUX.2 [klein] folders built with diffusers' own classes (random weights), for parity fixtures.

    PYTHONPATH=/work/scratch/diffusers/src python tools/tiny-klein/build_tiny_klein.py --out /tmp/tiny-klein

Writes two diffusers `save_pretrained` folders, `<out>/base` (is_distilled false: CFG with the empty prompt)
and `<out>/distilled` (is_distilled true: one transformer call per step), each with
  - tokenizer/: a small byte-level BPE trained with `tokenizers` behind Qwen2's pre-tokenizer (its Split regex,
    ByteLevel without regex, NFC), Qwen3's chat markers as added tokens and a chat template that writes what
    Qwen3's does for one user message with the generation prompt and thinking disabled;
  - text_encoder/: Qwen3ForCausalLM, 3 layers of width 32;
  - transformer/: Flux2Transformer2DModel, 1 double + 1 single block, inner width 32;
  - vae/: AutoencoderKLFlux2, 8x downsampling, 32 latent channels, non-trivial batch-norm statistics;
  - scheduler/: FlowMatchEulerDiscreteScheduler with dynamic (exponential) shifting, as klein ships.
The weights are perturbed away from diffusers' initialisation (which zeroes some output layers) so every
component's output depends on its inputs and a parity check can fail.
"""
from __future__ import annotations

import argparse
import os

import torch

from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AddedToken, Qwen2TokenizerFast, Qwen3Config, Qwen3ForCausalLM

# Qwen2's pre-tokenizer regex (transformers' tokenization_qwen2.PRETOKENIZE_REGEX)
QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# What Qwen3's chat template writes for user messages, the generation prompt and enable_thinking=False.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)

CORPUS = [
    "make the circle blue", "make the square green", "turn the background yellow", "remove the triangle",
    "make the mug look like this", "paint the diamond red", "change the sky to orange at sunset",
    "It's the user's turn: they'll say what we've done, I'm sure you'd agree.", "Numbers 12345 and 3.14 or 2026-01-15!",
    "Café, naïve, façade — déjà vu; 東京 and Zürich.", "line one\nline two\r\n\ttabbed   spaced",
    "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
]


def train_tokenizer(vocab_size: int, corpus: list[str] | None = None) -> Qwen2TokenizerFast:
    """A Qwen2-style byte-level BPE trained on `corpus` (default: the parity fixtures' mixed-script sentences)."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator((CORPUS if corpus is None else corpus) * 20, trainer)
    model = bpe.model
    vocab = bpe.get_vocab()
    # the merges, in rank order, from the trained model's own serialisation
    import json
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]]
    del model
    tok = Qwen2TokenizerFast(vocab=vocab, merges=merges)
    tok.add_tokens([AddedToken("<|im_start|>", special=True), AddedToken("<|im_end|>", special=True)], special_tokens=True)
    tok.add_tokens([AddedToken("<think>", special=False), AddedToken("</think>", special=False)])
    tok.chat_template = CHAT_TEMPLATE
    tok.model_max_length = 131072
    return tok


def perturb(module: torch.nn.Module, scale: float, generator: torch.Generator) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)


def build(out: str, distilled: bool, seed: int) -> None:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    tokenizer = train_tokenizer(384)
    text_cfg = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
                           tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id)
    text_encoder = Qwen3ForCausalLM(text_cfg).eval()
    perturb(text_encoder, 0.05, g)
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=128, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=3 * 32, timestep_guidance_channels=32, mlp_ratio=2.0, axes_dims_rope=(4, 4, 4, 4),
        rope_theta=2000, guidance_embeds=False).eval()
    perturb(transformer, 0.05, g)
    vae = AutoencoderKLFlux2(block_out_channels=(8, 16, 16, 16), layers_per_block=1, latent_channels=32,
                             norm_num_groups=4, mid_block_add_attention=False, sample_size=64).eval()
    perturb(vae, 0.02, g)
    with torch.no_grad():
        vae.bn.running_mean.copy_(torch.randn(vae.bn.running_mean.shape, generator=g) * 0.2)
        vae.bn.running_var.copy_(0.5 + torch.rand(vae.bn.running_var.shape, generator=g) * 1.5)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True,
                                                time_shift_type="exponential")
    pipe = Flux2KleinPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                              transformer=transformer, is_distilled=distilled)
    pipe.save_pretrained(out)
    print(f"wrote {out} (is_distilled={distilled})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    build(os.path.join(args.out, "base"), distilled=False, seed=1)
    build(os.path.join(args.out, "distilled"), distilled=True, seed=2)


if __name__ == "__main__":
    main()
