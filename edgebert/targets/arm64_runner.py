"""Runs inside the emulated aarch64 Python, with numpy and the runtime it is asked for.

    python3.11 arm64_runner.py MODEL.onnx INPUTS.npz OUTPUTS.npz [--extensions]
    python3.11 arm64_runner.py MODEL.xml INPUTS.npz OUTPUTS.npz --openvino PRECISION

An .onnx model runs in ONNX Runtime; --extensions registers onnxruntime-extensions'
custom ops (the tokenizer-in-graph models, whose inputs are strings). An .xml model (IR)
runs in OpenVINO's CPU plugin, compiled as edgebert.runtime compiles it: latency mode,
and PRECISION (the one its stage recorded, or "default") where this CPU runs it.
"""

import platform
import sys

import numpy as np


def onnxruntime_session(model: str, extensions: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if extensions:
        from onnxruntime_extensions import get_library_path

        opts.register_custom_ops_library(get_library_path())
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    return {i.name for i in sess.get_inputs()}, lambda feeds: sess.run(None, feeds), \
        ort.__version__


def openvino_model(model: str, precision: str):
    import openvino as ov

    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 1}
    caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    # as formats/openvino.runnable_precision: bf16 where the CPU has it, else f32
    if precision == "bf16":
        config["INFERENCE_PRECISION_HINT"] = "bf16" if "BF16" in caps else "f32"
    elif precision in ("fp32", "f32"):
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(core.read_model(model), "CPU", config)
    request = compiled.create_infer_request()

    def run(feeds):
        res = request.infer(feeds)
        return [np.array(res[o]) for o in compiled.outputs]

    hint = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # f32, f16, bf16
    return {i.get_any_name() for i in compiled.inputs}, run, \
        f"{ov.__version__.split('-')[0]} ({hint})"


def main() -> None:
    model, inputs, outputs = sys.argv[1:4]
    flags = sys.argv[4:]
    if "--openvino" in flags:
        wanted, run, version = openvino_model(model, flags[flags.index("--openvino") + 1])
    else:
        wanted, run, version = onnxruntime_session(model, "--extensions" in flags)
    data = np.load(inputs)
    n = int(data["n_batches"])
    result = {}
    for b in range(n):
        feeds = {k: data[f"{b}:{k}"] for k in wanted}
        feeds = {k: v.astype(object) if v.dtype.kind == "U" else v for k, v in feeds.items()}
        for j, out in enumerate(run(feeds)):
            result[f"{b}:{j}"] = out.astype(str) if out.dtype == object else out  # no pickles
    np.savez(outputs, machine=platform.machine(), version=version, **result)


if __name__ == "__main__":
    main()
