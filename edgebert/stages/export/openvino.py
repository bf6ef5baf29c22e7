"""OpenVINO IR: the writer of `--format openvino` (model.xml + model.bin), in the float
precision the stage chose (`float_precision`)."""

from __future__ import annotations

from edgebert.stages.export.job import Job, Written


def write_openvino(job: Job) -> Written:
    """The IR converted from the ONNX export; checked and scored one text at a time, as an
    app runs it (static shapes per length bucket: formats/openvino.py); run under arm64
    emulation beside x86 where the emulator is built, so that it may be an arm64 candidate
    (OpenVINO has an ARM CPU plugin)."""
    from edgebert.formats.openvino import open_openvino, save_ir
    from edgebert.predict import one_at_a_time, runner_forward
    from edgebert.targets.check import openvino_arm64_check

    onnx_path = job.onnx()
    save_ir(onnx_path, job.target, job.precision)
    arm = openvino_arm64_check(job.target, job.opened, job.precision, onnx_path, job.log)
    onnx_path.unlink()
    runner = open_openvino(job.target, record={"inference_precision": job.precision})
    return Written(one_at_a_time(runner_forward(runner, job.opened.kind)),
                   record={"arm64_emulation": arm})
