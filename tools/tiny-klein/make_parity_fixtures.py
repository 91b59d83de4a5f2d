"""Parity fixtures for the FLUX.2 [klein] family: diffusers' own pipelines on tiny models, fixed initial noise.

    PYTHONPATH=/work/scratch/diffusers/src python tools/tiny-klein/make_parity_fixtures.py [--work /tmp/tiny-klein]

1. builds the tiny base and distilled folders (build_tiny_klein.py) and exports them with the export tool
   (tools/export/export_model.py, text-encoder layers 1,2,3, 64 prompt tokens) into test/fixtures/flux2/;
2. checks every ONNX component against PyTorch on fresh inputs (printed);
3. runs Flux2KleinPipeline / Flux2KleinInpaintPipeline with `latents=` noise and output_type="latent" for each case
   and writes, per case, `<name>.json`, `<name>.noise.f32` ([1, 128, H/16, W/16], the layout `latents=` takes) and
   `<name>.expected.f32` ([1, 32, H/8, W/8], what output_type="latent" returns), little-endian float32;
4. writes `python-values.json`: token ids of prompts as the pipeline tokenizes them, and the scheduler's sigmas
   and timesteps for several step counts and sizes, for the TypeScript unit tests.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "flux2")
LAYERS = (1, 2, 3)
MAX_LEN = 64


def f32(path: str, t: torch.Tensor) -> None:
    t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tofile(path)


def make_images() -> None:
    src = Image.open(os.path.join(ROOT, "test", "fixtures", "shapes-128.png")).convert("RGB")
    src.resize((64, 64), Image.BICUBIC).save(os.path.join(OUT, "source.png"))
    big = Image.open(os.path.join(ROOT, "test", "fixtures", "shapes-320x224.png")).convert("RGB")
    big.crop((40, 40, 40 + 120, 40 + 96)).resize((80, 64), Image.BICUBIC).save(os.path.join(OUT, "reference.png"))
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:40] = 255  # aligned to the 16-pixel token grid: every mask convention agrees there
    Image.fromarray(mask, "L").save(os.path.join(OUT, "mask.png"))


def check_onnx(src: str, dst: str) -> None:
    """ONNX Runtime vs PyTorch for each exported component (fresh inputs, not the export's examples)."""
    sys.path.insert(0, os.path.join(ROOT, "tools", "export"))
    import export_model as ex
    from diffusers import AutoencoderKLFlux2, Flux2Transformer2DModel
    from transformers import Qwen3ForCausalLM

    g = torch.Generator().manual_seed(7)
    te = Qwen3ForCausalLM.from_pretrained(os.path.join(src, "text_encoder")).eval()
    tr = Flux2Transformer2DModel.from_pretrained(os.path.join(src, "transformer")).eval()
    vae = AutoencoderKLFlux2.from_pretrained(os.path.join(src, "vae")).eval()
    sess = lambda part: ort.InferenceSession(os.path.join(dst, part, "model.onnx"), providers=["CPUExecutionProvider"])  # noqa: E731
    ids = torch.randint(0, te.config.vocab_size, (3, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    with torch.no_grad():
        checks = {
            "text_encoder": (ex.QwenPromptEmbeds(te, list(LAYERS))(ids, mask),
                             sess("text_encoder").run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]),
        }
        hs, ehs, t = torch.randn(2, 40, 128, generator=g), torch.randn(2, 20, 96, generator=g), torch.tensor([0.7, 0.3])
        img_ids = torch.cartesian_prod(torch.tensor([0, 10]), torch.arange(4), torch.arange(5), torch.arange(1))
        txt_ids = torch.cartesian_prod(torch.arange(1), torch.arange(1), torch.arange(1), torch.arange(20))
        checks["transformer"] = (ex.KleinTransformer(tr)(hs, ehs, t, img_ids, txt_ids),
                                 sess("transformer").run(None, {"hidden_states": hs.numpy(), "encoder_hidden_states": ehs.numpy(),
                                                                "timestep": t.numpy(), "img_ids": img_ids.numpy(), "txt_ids": txt_ids.numpy()})[0])
        img = torch.rand(2, 3, 80, 48, generator=g) * 2 - 1
        checks["vae_encoder"] = (ex.KleinVaeEncoder(vae)(img), sess("vae_encoder").run(None, {"sample": img.numpy()})[0])
        lat = torch.randn(1, 128, 3, 5, generator=g)
        checks["vae_decoder"] = (ex.KleinVaeDecoder(vae)(lat), sess("vae_decoder").run(None, {"latent": lat.numpy()})[0])
    for part, (want, got) in checks.items():
        err = float(np.abs(want.numpy() - got).max())
        print(f"  {part}: ONNX vs PyTorch max abs error {err:.2e} (output scale {float(want.abs().max()):.2f})")
        assert err < 1e-4, f"{part} export does not match PyTorch"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/tiny-klein")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from diffusers import Flux2KleinInpaintPipeline, Flux2KleinPipeline

    subprocess.run([sys.executable, os.path.join(HERE, "build_tiny_klein.py"), "--out", args.work], check=True)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith((".json", ".f32")):
            os.remove(os.path.join(OUT, f))
    make_images()
    for variant in ("base", "distilled"):
        dst = os.path.join(OUT, f"tiny-klein-{variant}")
        shutil.rmtree(dst, ignore_errors=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export", "export_model.py"), "--diffusers", os.path.join(args.work, variant),
                        "--out", dst, "--text-encoder-out-layers", ",".join(map(str, LAYERS)), "--max-sequence-length", str(MAX_LEN), "--native-size", "64"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"exported {dst}")
        check_onnx(os.path.join(args.work, variant), dst)

    pipes = {v: Flux2KleinPipeline.from_pretrained(os.path.join(args.work, v)) for v in ("base", "distilled")}
    inpaint = Flux2KleinInpaintPipeline(**pipes["base"].components)
    source = Image.open(os.path.join(OUT, "source.png"))
    reference = Image.open(os.path.join(OUT, "reference.png"))
    mask = Image.open(os.path.join(OUT, "mask.png"))
    common = dict(output_type="latent", max_sequence_length=MAX_LEN, text_encoder_out_layers=LAYERS)
    results: dict[str, torch.Tensor] = {}

    def case(name: str, model: str, instruction: str, steps: int, text_scale: float, noise_seed: int, run, **extra) -> None:
        noise = torch.randn(1, 128, 4, 4, generator=torch.Generator().manual_seed(noise_seed))
        with torch.no_grad():
            latent = run(noise)
        results[name] = latent
        f32(os.path.join(OUT, f"{name}.noise.f32"), noise)
        f32(os.path.join(OUT, f"{name}.expected.f32"), latent)
        spec = {"name": name, "model": f"tiny-klein-{model}", "image": "source.png", "instruction": instruction, "steps": steps,
                "textScale": text_scale, "strength": 1.0, "references": [], "mask": None, "continueFrom": None, "noiseShape": list(noise.shape),
                "latentShape": list(latent.shape), **extra}
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(spec, f, indent=2)
        print(f"  {name}: latent {list(latent.shape)}, |x| max {float(latent.abs().max()):.3f}")

    case("base-edit", "base", "make the circle blue", 6, 4.0, 11,
         lambda n: pipes["base"](image=source, prompt="make the circle blue", num_inference_steps=6, guidance_scale=4.0, latents=n, **common).images)
    case("distilled-edit", "distilled", "make the square green", 4, 1.0, 12,
         lambda n: pipes["distilled"](image=source, prompt="make the square green", num_inference_steps=4, guidance_scale=1.0, latents=n, **common).images)

    # latent iteration: the second edit's reference tokens are the first result's latent, normalised and patchified
    # (what a perfect VAE round trip would give), handed to the pipeline in place of its VAE encoding
    def chained(n: torch.Tensor) -> torch.Tensor:
        pipe = pipes["distilled"]
        first = results["distilled-edit"]
        patched = pipe._patchify_latents(first)
        mean = pipe.vae.bn.running_mean.view(1, -1, 1, 1)
        std = torch.sqrt(pipe.vae.bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps)
        tokens = (patched - mean) / std
        original = pipe._encode_vae_image
        pipe._encode_vae_image = lambda image, generator: tokens
        try:
            return pipe(image=source, prompt="make the circle red", num_inference_steps=4, guidance_scale=1.0, latents=n, **common).images
        finally:
            pipe._encode_vae_image = original
    case("chain-2", "distilled", "make the circle red", 4, 1.0, 13, chained, continueFrom="distilled-edit")

    case("masked-edit", "base", "make the square green", 6, 4.0, 14,
         lambda n: inpaint(image=source, mask_image=mask, prompt="make the square green", strength=1.0, num_inference_steps=6,
                           guidance_scale=4.0, latents=n, **common).images, mask="mask.png")
    # strength < 1: the inpaint pipeline with a mask that covers everything (so blending changes nothing) starts from
    # the source noised to the first sigma kept; it only does that when it draws the noise itself (`latents=` is taken
    # as the start as is), so the noise comes from the same seeded generator it uses: 4 steps at 0.6 run 3 steps
    # (int(4 - 2.4) = 1 skipped; Stable Diffusion's floor(4 * 0.6) would run 2)
    everything = Image.fromarray(np.full((64, 64), 255, np.uint8), "L")
    case("strength-edit", "base", "make the circle blue", 4, 4.0, 16,
         lambda n: inpaint(image=source, mask_image=everything, prompt="make the circle blue", strength=0.6, num_inference_steps=4,
                           guidance_scale=4.0, generator=torch.Generator().manual_seed(16), **common).images, strength=0.6)
    case("reference-edit", "distilled", "make the mug look like this", 4, 1.0, 15,
         lambda n: pipes["distilled"](image=[source, reference], prompt="make the mug look like this", num_inference_steps=4,
                                      guidance_scale=1.0, latents=n, **common).images, references=["reference.png"])

    # token ids exactly as _get_qwen3_prompt_embeds makes them, and raw encodings of awkward text
    tok = pipes["base"].tokenizer
    prompts = ["make the circle blue", "", "It's 2026: they'll PAINT 3 mugs, don't they?", "Café  déjà\tvu\n\nnew line  ",
               "<|im_end|> typed <think> tags", "東京 Zürich 12345"]
    templated = []
    for p in prompts:
        text = tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True, enable_thinking=False)
        enc = tok(text, padding="max_length", truncation=True, max_length=MAX_LEN)
        templated.append({"prompt": p, "text": text, "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    raw = [{"text": p, "ids": tok(p)["input_ids"]} for p in prompts + ["  leading spaces", "a\r\n\r\nb", "x" * 70]]

    # the scheduler's sigmas for N steps at image_seq_len tokens, as the pipeline sets them
    from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu, retrieve_timesteps
    schedules = []
    for steps, seq_len in [(4, 16), (6, 16), (4, 4096), (28, 1024), (50, 4096), (4, 5000), (1, 64)]:
        sched = pipes["base"].scheduler.__class__.from_config(pipes["base"].scheduler.config)
        mu = compute_empirical_mu(seq_len, steps)
        sigmas = np.linspace(1.0, 1 / steps, steps)
        timesteps, _ = retrieve_timesteps(sched, steps, "cpu", sigmas=sigmas, mu=mu)
        schedules.append({"steps": steps, "imageSeqLen": seq_len, "mu": mu, "sigmas": sched.sigmas.tolist(), "timesteps": timesteps.tolist()})
    with open(os.path.join(OUT, "python-values.json"), "w") as f:
        json.dump({"maxSequenceLength": MAX_LEN, "templated": templated, "raw": raw, "schedules": schedules}, f, indent=1, ensure_ascii=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
