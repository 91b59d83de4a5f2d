"""Recover a train.py checkpoint from an exported model folder, so a shipped model can be trained further
(`train.py --resume`) when the original .pt is gone: only the ONNX files are committed.

    python tools/tiny-model/recover_checkpoint.py --model models/tiny-pix2pix --out /tmp/work/tiny-pix2pix.pt

How: the exporter renames some weights (GroupNorm scales become `onnx::Mul_*`, bias-free Linear weights are stored
transposed as `onnx::MatMul_*`). So each network is built fresh, every parameter filled with distinct random values,
exported with export.py's own settings, and each parameter located among that export's initializers by value
(as is, reshaped or transposed). The same name and layout in the shipped file then hold the trained value. The
recovered networks are checked against the shipped ONNX files on random inputs before anything is written.
"""
from __future__ import annotations

import argparse
import io
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

import export as ex
import nets


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _export_bytes(module: torch.nn.Module, args: tuple, inputs: list[str], outputs: list[str], axes: dict) -> onnx.ModelProto:
    buf = io.BytesIO()
    torch.onnx.export(module, args, buf, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      opset_version=ex.OPSET, dynamo=False, do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def _locate(probe: dict[str, np.ndarray], params: dict[str, torch.Tensor]) -> dict[str, tuple[str, str]]:
    """parameter name -> (initializer name, 'same' | 'transpose'), found by value in a probe export."""
    found = {}
    for pname, p in params.items():
        v = p.detach().numpy()
        for iname, arr in probe.items():
            if arr.size != v.size:
                continue
            if np.array_equal(arr.reshape(-1), v.reshape(-1)):
                found[pname] = (iname, "same")
                break
            if v.ndim == 2 and np.array_equal(arr.reshape(-1), v.T.reshape(-1)):
                found[pname] = (iname, "transpose")
                break
        else:
            raise SystemExit(f"cannot find {pname} {tuple(v.shape)} in the export")
    return found


def recover(module: torch.nn.Module, wrapper: torch.nn.Module, shipped_path: str, args: tuple, inputs: list[str],
            outputs: list[str], axes: dict) -> bool:
    """Fill `module` (wrapped by `wrapper` for export) with the weights of the shipped ONNX file at shipped_path.
    False (nothing filled) when the shipped file holds other weights than this layout exports."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    params = dict(module.named_parameters())
    probe = _initializers(_export_bytes(wrapper, args, inputs, outputs, axes))
    shipped = _initializers(onnx.load(shipped_path))
    if {k: v.shape for k, v in probe.items()} != {k: v.shape for k, v in shipped.items()}:
        return False
    where = _locate(probe, params)
    with torch.no_grad():
        for pname, (iname, how) in where.items():
            arr = torch.from_numpy(np.array(shipped[iname], dtype=np.float32))
            p = params[pname]
            p.copy_(arr.reshape(p.T.shape).T if how == "transpose" else arr.reshape(p.shape))
    return True


def check(wrapper: torch.nn.Module, shipped_path: str, feeds: dict[str, np.ndarray]) -> float:
    sess = ort.InferenceSession(shipped_path, providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)[0]
    with torch.no_grad():
        got = wrapper(*[torch.from_numpy(v) for v in feeds.values()])
    got = got[0] if isinstance(got, tuple) else got
    return float(np.abs(got.numpy() - want).max())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="exported folder (models/tiny-pix2pix)")
    ap.add_argument("--out", required=True, help="checkpoint to write")
    args = ap.parse_args()
    torch.set_num_threads(1)
    m = args.model
    with open(f"{m}/tokenizer/tokenizer.json") as f:
        vocab = json.load(f)["model"]["vocab"]
    with open(f"{m}/vae_decoder/config.json") as f:
        vae = json.load(f)
    size, scaling = vae["sample_size"], vae["scaling_factor"]
    lat = size // 8
    enc = nets.Encoder()
    unet, text = nets.UNet(context_dim=64), nets.TextEncoder(len(vocab))
    for net in (enc, unet, text):
        net.eval()
    tok = nets.WordTokenizer([])
    tok.vocab = vocab
    ids = tok.batch(["make the circle blue", ""])
    text_w = ex.TextEncoderExport(text, vocab[nets.EOS])
    enc_w = ex.EncoderExport(enc)

    ok = recover(text, text_w, f"{m}/text_encoder/model.onnx", (ids,), ["input_ids"], ["last_hidden_state", "pooler_output"],
            {"input_ids": {0: "b", 1: "s"}, "last_hidden_state": {0: "b", 1: "s"}, "pooler_output": {0: "b"}})
    hidden = text(ids).detach()
    ok &= recover(unet, unet, f"{m}/unet/model.onnx", (torch.randn(2, 8, lat, lat), torch.tensor([999.0, 999.0]), hidden),
            ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
            {"sample": {0: "b", 2: "h", 3: "w"}, "timestep": {0: "t"}, "encoder_hidden_states": {0: "b", 1: "s"},
             "out_sample": {0: "b", 2: "h", 3: "w"}})
    ok &= recover(enc, enc_w, f"{m}/vae_encoder/model.onnx", (torch.randn(1, 3, size, size),), ["sample"], ["latent_parameters"],
            {"sample": {0: "b", 2: "h", 3: "w"}, "latent_parameters": {0: "b", 2: "h", 3: "w"}})
    if not ok:
        raise SystemExit("the shipped files hold other layers than nets.py builds: cannot recover")
    for full_res_block in (False, True):  # decoders exported before and after the full-resolution ResBlock
        dec = nets.Decoder(full_res_block=full_res_block).eval()
        if recover(dec, dec, f"{m}/vae_decoder/model.onnx", (torch.randn(1, 4, lat, lat),), ["latent_sample"], ["sample"],
                   {"latent_sample": {0: "b", 2: "h", 3: "w"}, "sample": {0: "b", 2: "h", 3: "w"}}):
            break
    else:
        raise SystemExit("the shipped decoder matches no Decoder layout of nets.py: cannot recover")

    rng = np.random.default_rng(0)
    hidden_np = text(ids).detach().numpy()
    errors = {
        "text_encoder": check(text_w, f"{m}/text_encoder/model.onnx", {"input_ids": ids.numpy()}),
        "unet": check(unet, f"{m}/unet/model.onnx", {"sample": rng.standard_normal((2, 8, lat, lat)).astype(np.float32),
                                                       "timestep": np.array([500.0, 500.0], np.float32),
                                                       "encoder_hidden_states": hidden_np}),
        "vae_encoder": check(enc_w, f"{m}/vae_encoder/model.onnx", {"sample": rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)}),
        "vae_decoder": check(dec, f"{m}/vae_decoder/model.onnx", {"latent_sample": rng.standard_normal((1, 4, lat, lat)).astype(np.float32)}),
    }
    print("max |torch - shipped onnx|:", json.dumps(errors))
    if max(errors.values()) > 1e-3:
        raise SystemExit("recovered networks do not reproduce the shipped files")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save({"encoder": enc.state_dict(), "decoder": dec.state_dict(), "unet": unet.state_dict(),
                "text_encoder": text.state_dict(), "vocab": vocab, "scaling_factor": scaling, "size": size,
                "decoder_full_res_block": full_res_block,
                "args": {"recovered_from": m}, "train_seconds": None,
                "history": [{"args": {"recovered_from": m}, "train_seconds": None}]}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
