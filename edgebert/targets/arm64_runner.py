"""Runs inside the emulated aarch64 Python: numpy and onnxruntime only.

    python3.11 arm64_runner.py MODEL.onnx INPUTS.npz OUTPUTS.npz
"""

import platform
import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    model, inputs, outputs = sys.argv[1:4]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    data = np.load(inputs)
    wanted = {i.name for i in sess.get_inputs()}
    n = int(data["n_batches"])
    result = {}
    for b in range(n):
        feeds = {k: data[f"{b}:{k}"] for k in ("input_ids", "attention_mask", "token_type_ids")
                 if k in wanted}
        for j, out in enumerate(sess.run(None, feeds)):
            result[f"{b}:{j}"] = out
    np.savez(outputs, machine=platform.machine(), ort=ort.__version__, **result)


if __name__ == "__main__":
    main()
