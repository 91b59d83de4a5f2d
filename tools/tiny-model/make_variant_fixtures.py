"""Tiny synthetic ONNX graphs with the *other* exporters' interfaces, for the engine's adapter tests:

  unet-timestep-int64.onnx   timestep int64 [steps] (optimum <= 1.23)
  unet-timestep-scalar.onnx  timestep float scalar [] (optimum >= 1.24, optimum-onnx)
  vae-encoder-latent-sample.onnx  output 'latent_sample' with 4 channels (diffusers script / optimum <= 1.22)

The UNets return out_sample = sample[:, 0:4] * 0 + timestep (as float), so a test can read back exactly
which timestep value the engine fed. The encoder returns the 8x8 average of the image (3 channels) plus a
zero channel.

    python tools/tiny-model/make_variant_fixtures.py --out test/fixtures/onnx-variants
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def unet(timestep_type: int, timestep_shape: list) -> onnx.ModelProto:
    sample = helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch_size", 8, "height", "width"])
    t = helper.make_tensor_value_info("timestep", timestep_type, timestep_shape)
    ehs = helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT, ["batch_size", "sequence_length", 64])
    out = helper.make_tensor_value_info("out_sample", TensorProto.FLOAT, ["batch_size", 4, "height", "width"])
    inits = [numpy_helper.from_array(np.array([0], np.int64), "start"), numpy_helper.from_array(np.array([4], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "axis"), numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    nodes = [
        helper.make_node("Slice", ["sample", "start", "end", "axis"], ["first4"]),
        helper.make_node("Mul", ["first4", "zero"], ["zeros"]),
        helper.make_node("Cast", ["timestep"], ["t_float"], to=TensorProto.FLOAT),
        # [steps] broadcasts over the batch axis only as [B,1,1,1]; reshape a 1-d timestep to [-1,1,1,1]
        helper.make_node("Reshape", ["t_float", "t_shape"], ["t4"]),
        helper.make_node("Add", ["zeros", "t4"], ["out_sample"]),
    ]
    inits.append(numpy_helper.from_array(np.array([-1, 1, 1, 1], np.int64), "t_shape"))
    graph = helper.make_graph(nodes, "unet_variant", [sample, t, ehs], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def vae_encoder_latent_sample() -> onnx.ModelProto:
    sample = helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch_size", 3, "height", "width"])
    out = helper.make_tensor_value_info("latent_sample", TensorProto.FLOAT, ["batch_size", 4, "latent_height", "latent_width"])
    nodes = [
        helper.make_node("AveragePool", ["sample"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Slice", ["pooled", "s0", "s1", "ax"], ["one"]),
        helper.make_node("Mul", ["one", "zero"], ["zero_channel"]),
        helper.make_node("Concat", ["pooled", "zero_channel"], ["latent_sample"], axis=1),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "s0"), numpy_helper.from_array(np.array([1], np.int64), "s1"),
             numpy_helper.from_array(np.array([1], np.int64), "ax"), numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    graph = helper.make_graph(nodes, "vae_encoder_variant", [sample], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    onnx.save(unet(TensorProto.INT64, ["steps"]), os.path.join(args.out, "unet-timestep-int64.onnx"))
    onnx.save(unet(TensorProto.FLOAT, []), os.path.join(args.out, "unet-timestep-scalar.onnx"))
    onnx.save(vae_encoder_latent_sample(), os.path.join(args.out, "vae-encoder-latent-sample.onnx"))
    print("wrote variants to", args.out)


if __name__ == "__main__":
    main()
