"""arm64 artifacts under emulated aarch64 ONNX Runtime and OpenVINO (qemu-user).

Skipped, with the reason, where qemu-user-static or debootstrap is missing;
the first run builds the environment into the cache (about a minute, 400 MB).
"""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import run_cli

pytestmark = pytest.mark.skipif(
    not (shutil.which("qemu-aarch64-static") and shutil.which("debootstrap")),
    reason="arm64 emulation needs qemu-user-static and debootstrap "
           "(apt-get install qemu-user-static debootstrap)")


def test_arm64_int8_agrees_with_x86_under_emulation(tiny_teacher, tmp_path):
    code, output = run_cli("arm-env")
    assert code == 0, output
    out = tmp_path / "arm64"
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "arm64", "--mode",
                           "static", "--calibration-examples", "64", "--max-drop", "5",
                           "--out", out)
    assert code == 0, output
    arm = json.loads((out / "metrics.json").read_text())["arm64_emulation"]
    assert arm["checked"] and arm["machine"] == "aarch64"
    assert arm["top1_agreement"] == 1.0 and arm["max_abs_diff"] < 0.05
    assert arm["predictions"] == arm["examples"]  # one label per sentence; no padding counted


def test_one_file_ort_model_runs_under_aarch64_with_the_extensions(tiny_teacher, tmp_path):
    """The tokenizer-in-graph ORT file loads on aarch64 with the extensions' aarch64
    library and gives the labels x86 gives."""
    code, output = run_cli("arm-env")
    assert code == 0, output
    out = tmp_path / "ort-text"
    code, output = run_cli("export", "--model", tiny_teacher, "--format", "ort",
                           "--with-tokenizer", "--out", out)
    assert code == 0, output
    arm = json.loads((out / "metrics.json").read_text())["text_parity"]["arm64_emulation"]
    assert arm["checked"] and arm["machine"] == "aarch64"
    assert arm["same_labels"] == 1.0 and arm["examples"] > 0


def test_openvino_ir_runs_under_aarch64_and_is_an_arm64_candidate(tiny_teacher, tmp_path):
    """OpenVINO's ARM CPU plugin (the aarch64 wheel `arm-env` adds) runs the INT8 IR NNCF
    wrote; the IR records the check and the report counts it among arm64's artifacts."""
    pytest.importorskip("openvino", reason="OpenVINO is an optional extra")
    from edgebert.report.collect import _arch_rows

    code, output = run_cli("arm-env")
    assert code == 0, output
    assert "OpenVINO: openvino not installed" not in output
    out = tmp_path / "ov-int8"
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "openvino-int8",
                           "--max-drop", "5", "--out", out)
    assert code == 0, output
    arm = json.loads((out / "metrics.json").read_text())["arm64_emulation"]
    assert arm["checked"] and arm["machine"] == "aarch64", arm
    assert arm["openvino"].startswith(__import__("openvino").__version__.split("-")[0])
    assert arm["top1_agreement"] >= 0.98 and arm["predictions"] == arm["examples"] > 0
    row = {"artifact": "int8/openvino-int8", "arch": "x86_64", "arm64_emulation": arm}
    assert set(_arch_rows([row])) == {"x86", "arm64"}
    code, output = run_cli("arm-env", "--check", out, "--examples", "8")
    assert code == 0 and '"machine": "aarch64"' in output, output
