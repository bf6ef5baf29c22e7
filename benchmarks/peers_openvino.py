"""optimum-intel's documented recipe for a fine-tuned BERT classifier, run in its own venv.

    <openvino peer venv>/bin/python benchmarks/peers_openvino.py TEACHER OUT CALIBRATION MAX_LENGTH

Run by benchmarks/peers.py inside the venv it makes (optimum-intel pins its own optimum,
nncf and openvino; nothing of it is an edgebert dependency). Imports nothing from
edgebert. Writes, following https://huggingface.co/docs/optimum/intel/openvino:

    OUT/openvino/       OVModelForSequenceClassification.from_pretrained(export=True),
                        save_pretrained: the IR at its default precision
    OUT/openvino-int8/  OVQuantizer with OVConfig(quantization_config=OVQuantizationConfig()):
                        NNCF static INT8 (model_type "transformer") calibrated on the texts
                        of CALIBRATION (one per line: the task's training texts), loaded and
                        tokenized by `quantizer.get_calibration_dataset` as the docs show
    OUT/openvino.json   versions, the configs used, the runtime's default precision

Each directory holds model.xml + model.bin (optimum-intel's openvino_model.xml/.bin,
renamed: the one name every artifact has) and config.json; peers.py adds the tokenizer,
stage.json and metrics.json.

Pitfalls met on the way:
- pip resolves `optimum-intel[openvino]` to a CUDA torch from PyPI unless torch is
  installed first (peers.py installs the pinned CPU torch before the rest);
- `get_calibration_dataset` needs the `datasets` package, which the openvino extra does not
  pull; a local file goes through it as `get_calibration_dataset("text", data_files=...)`;
- OVQuantizationConfig's `num_samples` caps the calibration set (None: all of it);
- quantizing a model in place: `OVQuantizer.quantize` changes the OVModel it was given, so
  the default-precision directory is saved before it runs;
- the IR is saved with FP32 weights for a model this small (optimum-intel compresses
  weights to INT8 by default only past a billion parameters); at run time OpenVINO on a
  CPU with AMX-BF16 or AVX512-BF16 computes it in bf16 unless told
  INFERENCE_PRECISION_HINT=f32.
"""

from __future__ import annotations

import json
import shutil
import sys
from functools import partial
from importlib import metadata
from pathlib import Path


def renamed(out: Path) -> Path:
    """optimum-intel's openvino_model.xml/.bin in `out` renamed model.xml/.bin."""
    for suffix in (".xml", ".bin"):
        (out / f"openvino_model{suffix}").rename(out / f"model{suffix}")
    return out


def tokenize(examples: dict, tokenizer, max_length: int) -> dict:
    """The docs' preprocess function: pad to the longest in the map batch, truncate."""
    return tokenizer(examples["text"], padding=True, truncation=True, max_length=max_length)


def main(teacher: str, out: str, calibration: str, max_length: str) -> None:
    import openvino as ov
    from optimum.intel import (OVConfig, OVModelForSequenceClassification, OVQuantizationConfig,
                               OVQuantizer)
    from transformers import AutoTokenizer

    out = Path(out)
    texts = [t for t in Path(calibration).read_text().splitlines() if t.strip()]
    log = {"versions": {p: metadata.version(p) for p in
                        ("optimum-intel", "optimum", "openvino", "nncf", "transformers",
                         "torch", "datasets")},
           "runtime_default_inference_precision":
               ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()}
    for name in ("openvino", "openvino-int8"):
        shutil.rmtree(out / name, ignore_errors=True)
    model = OVModelForSequenceClassification.from_pretrained(teacher, export=True)
    model.save_pretrained(out / "openvino")
    renamed(out / "openvino")

    tokenizer = AutoTokenizer.from_pretrained(teacher)
    quantizer = OVQuantizer.from_pretrained(model)
    dataset = quantizer.get_calibration_dataset(
        "text", data_files=calibration, dataset_split="train", num_samples=len(texts),
        preprocess_function=partial(tokenize, tokenizer=tokenizer, max_length=int(max_length)))
    qconfig = OVQuantizationConfig(num_samples=len(texts))
    quantizer.quantize(ov_config=OVConfig(quantization_config=qconfig),
                       calibration_dataset=dataset, save_directory=out / "openvino-int8")
    renamed(out / "openvino-int8")
    log["calibration"] = {"texts": len(texts), "file": calibration, "max_length": int(max_length)}
    log["quantization_config"] = qconfig.to_dict()
    (out / "openvino.json").write_text(json.dumps(log, indent=2, default=str) + "\n")
    print(json.dumps({k: log[k] for k in ("versions", "runtime_default_inference_precision")}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
