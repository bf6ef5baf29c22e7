"""The artifacts benchmarks/peers.py compares, each built once in its work directory.

Every peer is made from the run's teacher by its tool's documented recipe (Optimum's and
optimum-intel's in venvs of their own, made here; torch.ao, Neural Compressor and ONNX
Runtime in edgebert's), scored on the test split one text at a time, and written as a
directory `edgebert bench` times: the model file, the tokenizer, a metrics.json and, for
the OpenVINO and bf16 peers, the stage.json the bench worker reads their format and
precision from. A finished one (its metrics.json there) is kept.

    >>> arts = build_peers(Path("runs/default"), Path("runs/bench/peers"), "x86-vnni")

The peer venvs need a CPU build of torch 2.13.0 (`torch==2.13.0+cpu`, installed before the
rest; resolved with the rest, pip takes PyPI's CUDA build, several GB): where pip does
not find one, point it at PyTorch's CPU index (PIP_EXTRA_INDEX_URL).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from common import run

HERE = Path(__file__).resolve().parent
TORCH_PIN = "torch==2.13.0+cpu"
"""Installed first in every peer venv (see above)."""
VENVS = {
    "optimum": ["optimum-onnx[onnxruntime]==0.1.0", "optimum==2.1.0", "transformers==4.57.6",
                "torch==2.13.0", "onnxruntime==1.32.0"],
    "openvino": ["optimum-intel[openvino]==2.2.0", "optimum==2.3.0", "openvino==2026.4.1",
                 "openvino-tokenizers==2026.4.1.0", "nncf==3.4.0", "transformers==4.57.6",
                 "torch==2.13.0", "datasets==5.0.1", "huggingface-hub==0.36.2"],
}
"""The peer venvs: each tool's current release and the stack it supports (optimum-intel
2.2.0 takes transformers 4.51 to 5.5: the 4.57 the teacher was trained with; `datasets`
is what its `get_calibration_dataset` loads texts with)."""
CALIBRATION_TEXTS = 300
"""Training texts optimum-intel's static INT8 is calibrated on (NNCF's default subset)."""


def peer_venv(work: Path, name: str) -> Path:
    """The Python of peer venv `name` (VENVS), made once."""
    python = work / f"venv-{name}" / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", python.parent.parent])
        run([python, "-m", "pip", "install", "-q", TORCH_PIN])
        run([python, "-m", "pip", "install", "-q", *VENVS[name]])
        if name == "openvino":
            # optimum-intel requires torchvision, and PyPI's is a CUDA build: beside the CPU
            # torch it fails to register its ops ("operator torchvision::nms does not
            # exist") and takes transformers' AutoProcessor, which optimum-intel imports,
            # down with it. Text models never use it.
            run([python, "-m", "pip", "uninstall", "-q", "-y", "torchvision"])
    return python


def size_mb(path: Path) -> float:
    """The size of the one file the artifact runs from (the .ort, not the .onnx beside it);
    of an OpenVINO one, its graph and the weights beside it."""
    from edgebert.formats import model_file

    found, xml = model_file(path), path / "model.xml"
    if found is None or found[0] == xml:
        return (xml.stat().st_size + xml.with_suffix(".bin").stat().st_size) / 1e6
    return found[0].stat().st_size / 1e6


def score_into(path: Path, forward, opened, test) -> dict:
    """Test accuracy of `forward`, one text at a time as an app runs it (dynamic INT8 picks
    its scales per batch; EdgeBERT's INT8 is scored so too), written as the artifact's
    metrics.json (what bench reads)."""
    from edgebert.predict import one_at_a_time

    scores = opened.score(one_at_a_time(forward), "test", test)
    (path / "metrics.json").write_text(json.dumps(
        {"metric": opened.task.metric, "test": scores, "size_mb": size_mb(path)}, indent=2))
    return scores


def bf16_skipped(flags: set[str]) -> str | None:
    """Why the PyTorch bf16 peer is left out on a CPU with `flags`; None: it is measured."""
    from edgebert.cpu import BF16_FLAGS

    if BF16_FLAGS & flags:
        return None
    return ("this CPU has neither AMX-BF16 nor AVX512-BF16: bf16 autocast would convert "
            "in software around FP32 products, no way a user would pick to run faster")


def cpu_flag_set() -> set[str]:
    """This CPU's flags that decide its runtimes (INT8 and bf16 ones)."""
    from edgebert.cpu import cpu_flags

    return set(cpu_flags()["flags"])


def openvino_default_precision() -> str:
    """What OpenVINO computes an f32 model in on this CPU when not told (bf16 or f32)."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()


def build_intel_peers(teacher: Path, opened, test, work: Path) -> dict[str, Path]:
    """optimum-intel's two OpenVINO artifacts and, where the CPU has bf16, the teacher under
    bf16 autocast: written as the bench worker's OpenVINO and bf16 contracts ask."""
    from edgebert.artifacts_io import copy_tokenizer, load_torch
    from edgebert.formats import read_record
    from edgebert.formats.openvino import open_openvino
    from edgebert.predict import runner_forward, torch_forward

    if not (work / "openvino-int8" / "metrics.json").exists():
        calibration = texts_file(teacher, work / "calibration_texts.txt", CALIBRATION_TEXTS,
                                 "train")
        run([peer_venv(work, "openvino"), HERE / "peers_openvino.py", teacher, work,
            calibration, opened.max_length])
        for name, precision in (("openvino", "f32"), ("openvino-int8", "int8")):
            copy_tokenizer(teacher, work / name)
            (work / name / "stage.json").write_text(json.dumps(
                {"stage": "peer", "format": "openvino", "precision": precision,
                 "inference_precision": None, "parent": str(teacher),
                 "made_by": "benchmarks/peers_openvino.py",
                 "task": opened.record["task"]}, indent=2) + "\n")
            score_into(work / name, runner_forward(open_openvino(
                work / name / "model.xml", 2, read_record(work / name)), opened.kind),
                opened, test)
    arts = {"openvino": work / "openvino", "openvino-int8": work / "openvino-int8"}
    if bf16_skipped(cpu_flag_set()):
        return arts
    bf16 = work / "teacher-bf16"
    if not (bf16 / "metrics.json").exists():
        shutil.copytree(teacher, bf16, dirs_exist_ok=True)
        (bf16 / "stage.json").write_text(json.dumps(opened.record | {"precision": "bf16"},
                                                    indent=2) + "\n")
        score_into(bf16, torch_forward(load_torch(opened), autocast=True), opened, test)
    return arts | {"teacher-bf16": bf16}


def build_peers(run: Path, work: Path, target: str) -> dict[str, Path]:
    """Every peer artifact, built once (a finished one, with its metrics.json, is kept)."""
    import onnxruntime.quantization as ortq
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from edgebert.artifacts_io import copy_tokenizer, load_torch, open_artifact
    from edgebert.formats import session
    from edgebert.predict import ort_forward
    from edgebert.stages.export.torchscript import export_torchscript, torchscript_forward

    teacher = run / "teacher"
    opened = open_artifact(teacher)
    test = opened.encode("test")
    cpu = {"x86-vnni": "avx512_vnni", "x86-avx2": "avx2"}[target]
    if not (work / "optimum-int8" / "metrics.json").exists():
        run([peer_venv(work, "optimum"), HERE / "peers_optimum.py", teacher, work, cpu])
        for name in ("optimum-fp32", "optimum-int8"):
            copy_tokenizer(teacher, work / name)
            onnx = next((work / name).glob("*.onnx"))  # model_quantized.onnx: bench wants
            onnx.rename(work / name / "model.onnx")      # the one name every artifact has
            score_into(work / name, ort_forward(session(work / name / "model.onnx"),
                                                opened.kind), opened, test)

    ao = work / "torch-ao-dynamic"
    if not (ao / "metrics.json").exists():
        ao.mkdir(parents=True, exist_ok=True)
        model = torch.ao.quantization.quantize_dynamic(load_torch(opened), {torch.nn.Linear},
                                                       dtype=torch.qint8)
        export_torchscript(model, opened.kind, ao / "model.pt")
        copy_tokenizer(teacher, ao)
        score_into(ao, torchscript_forward(ao / "model.pt"), opened, test)

    inc = work / "inc"
    if not (inc / "metrics.json").exists():
        # no budget: a peer is measured as it comes out (on Rotten Tomatoes INC's saved
        # program lost 1.76 dev points, past the 1-point guard EdgeBERT's own path keeps)
        run(["edgebert", "quantize", "--model", teacher, "--engine", "inc", "--target", target,
            "--mode", "dynamic", "--max-drop", "100", "--out", inc])

    plain = work / "teacher-onnx"
    if not (plain / "metrics.json").exists():
        run(["edgebert", "export", "--model", teacher, "--format", "onnx", "--out", plain])
    ortq_dir = work / "ort-quantize-dynamic"
    if not (ortq_dir / "metrics.json").exists():
        ortq_dir.mkdir(parents=True, exist_ok=True)
        ortq.quantize_dynamic(plain / "model.onnx", ortq_dir / "model.onnx")  # its defaults
        copy_tokenizer(teacher, ortq_dir)
        score_into(ortq_dir, ort_forward(session(ortq_dir / "model.onnx"), opened.kind),
                   opened, test)

    rec, parent = recommended(run), recommended_parent(run)
    fp32 = work / "edgebert-fp32-onnx"  # the same compressed model before INT8
    if not (fp32 / "metrics.json").exists():
        run(["edgebert", "export", "--model", parent, "--format", "onnx", "--out", fp32])

    base = work / "bert-base-shaped"
    if not (base / "config.json").exists():
        base.mkdir(parents=True, exist_ok=True)
        copy_tokenizer(teacher, base)  # first: it copies the teacher's config.json too
        torch.manual_seed(0)
        BertForSequenceClassification(BertConfig(num_labels=2)).save_pretrained(base)
    arts = {"teacher-pytorch": teacher, "bert-base-shaped-pytorch": base,
            "optimum-fp32": work / "optimum-fp32", "optimum-int8": work / "optimum-int8",
            "torch-ao-dynamic": ao, "inc-dynamic": inc, "ort-quantize-dynamic": ortq_dir,
            "edgebert-fp32-onnx": fp32, "edgebert-recommended": rec,
            "edgebert-one-file": run / "export" / "ort-text"}
    return arts | build_intel_peers(teacher, opened, test, work)


def recommended(run: Path) -> Path:
    report = json.loads((run / "report.json").read_text())
    return run / report["recommended"]["x86"]


def recommended_parent(run: Path) -> Path:
    """The FP32 model the recommended INT8 artifact was quantized from, inside `run`
    wherever this script runs from."""
    from edgebert.artifact import parent_in_run

    recorded = json.loads((recommended(run) / "stage.json").read_text())["parent"]
    parent = parent_in_run(run, recorded)
    if parent is None:
        raise SystemExit(f"{run}: the recommended artifact's parent {recorded} is not in the run")
    return parent


def texts_file(teacher: Path, path: Path, count: int, split: str = "test") -> Path:
    """The first `count` texts of the teacher's task's `split`, one per line."""
    from edgebert.artifacts_io import open_artifact

    examples = open_artifact(teacher).task.splits[split][:count]
    path.write_text("".join(" ".join(e.text.split()) + "\n" for e in examples))
    return path
