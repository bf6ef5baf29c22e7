"""Runs inside the emulated aarch64 Python: numpy and onnxruntime only.

    python3.11 arm64_runner.py MODEL.onnx INPUTS.npz OUTPUTS.npz [--extensions]

--extensions registers onnxruntime-extensions' custom ops (the tokenizer-in-graph
models, whose inputs are strings).
"""

import platform
import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    model, inputs, outputs = sys.argv[1:4]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if "--extensions" in sys.argv[4:]:
        from onnxruntime_extensions import get_library_path

        opts.register_custom_ops_library(get_library_path())
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    data = np.load(inputs)
    wanted = {i.name for i in sess.get_inputs()}
    n = int(data["n_batches"])
    result = {}
    for b in range(n):
        feeds = {k: data[f"{b}:{k}"] for k in wanted}
        feeds = {k: v.astype(object) if v.dtype.kind == "U" else v for k, v in feeds.items()}
        for j, out in enumerate(sess.run(None, feeds)):
            result[f"{b}:{j}"] = out.astype(str) if out.dtype == object else out  # no pickles
    np.savez(outputs, machine=platform.machine(), ort=ort.__version__, **result)


if __name__ == "__main__":
    main()
