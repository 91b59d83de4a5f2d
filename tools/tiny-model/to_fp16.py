"""Make the fp16 variant of an exported model folder: float16 weights and float16 inputs/outputs (timestep
included, as diffusers' --fp16 export does), so the engine's fp16 path (Uint16Array tensors) is exercised.

Inside the graph, weights and inputs are cast up to float32 before use: onnxruntime's CPU execution provider
has no float16 kernels for Conv and friends on x86, and the point here is the I/O contract, not fp16 speed.

    python tools/tiny-model/to_fp16.py --model models/tiny-pix2pix --out models/tiny-pix2pix-fp16
"""
from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

COMPONENTS = ("text_encoder", "unet", "vae_encoder", "vae_decoder")


def convert(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    new_nodes = []
    # weights: store as fp16, cast back to fp32 at load
    inits = []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and numpy_helper.to_array(init).size > 16:
            arr = numpy_helper.to_array(init).astype(np.float16)
            half = numpy_helper.from_array(arr, init.name + "__fp16")
            inits.append(half)
            new_nodes.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "__cast"))
        else:
            inits.append(init)
    del graph.initializer[:]
    graph.initializer.extend(inits)
    # float inputs: fp16 at the boundary, fp32 inside
    for inp in graph.input:
        if inp.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = inp.name + "__fp32"
            inp.type.tensor_type.elem_type = TensorProto.FLOAT16
            for node in graph.node:
                node.input[:] = [inner if x == inp.name else x for x in node.input]
            new_nodes.append(helper.make_node("Cast", [inp.name], [inner], to=TensorProto.FLOAT, name=inp.name + "__in"))
    # float outputs: computed in fp32, returned as fp16
    tail = []
    for out in graph.output:
        if out.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = out.name + "__fp32"
            for node in graph.node:  # the producer and any internal consumers use the fp32 name
                node.output[:] = [inner if x == out.name else x for x in node.output]
                node.input[:] = [inner if x == out.name else x for x in node.input]
            out.type.tensor_type.elem_type = TensorProto.FLOAT16
            tail.append(helper.make_node("Cast", [inner], [out.name], to=TensorProto.FLOAT16, name=out.name + "__out"))
    nodes = new_nodes + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    shutil.copytree(args.model, args.out, ignore=shutil.ignore_patterns("*.onnx", "EVAL.md", "*.png"))
    for c in COMPONENTS:
        model = onnx.load(os.path.join(args.model, c, "model.onnx"))
        onnx.save(convert(model), os.path.join(args.out, c, "model.onnx"))
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {args.out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
