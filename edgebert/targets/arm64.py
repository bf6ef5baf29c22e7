"""aarch64 ONNX Runtime, OpenVINO and ExecuTorch runtimes under qemu-user, for checking
arm64 artifacts on x86.

Built once into `$EDGEBERT_CACHE/arm64-env` (about 400 MB), with no root-only
steps beyond having `qemu-user-static` and `debootstrap` installed:
- `debootstrap --foreign` (first stage only: it runs no arm64 code) for python3;
- every downloaded .deb unpacked with `dpkg -x`;
- aarch64 wheels of onnxruntime, onnxruntime-extensions and numpy (`pip install --target`);
- a fake `/sys/devices/system/cpu/{possible,present}` and an ARM `/proc/cpuinfo`:
  ONNX Runtime segfaults under emulation when it reads the host's x86 ones; and a fake
  `midr_el1` (the CPU's ID register), without which OpenVINO's CPU plugin segfaults.

OpenVINO's IR runs in the aarch64 wheel of the installed openvino, unpacked into
`arm64-env/openvino-<version>/` (it has an ARM CPU plugin; NNCF's INT8 IR and the float
IR run there unchanged).

ExecuTorch's Python bindings link libtorch, and PyPI's aarch64 torch is a CUDA build, so
a `.pte` runs under emulation the way an app runs it: `pte_runner.cpp` (ExecuTorch's C++
Module API, the XNNPACK delegate and its kernels, no torch), cross-compiled once against
the aarch64 wheel of the installed executorch (`aarch64-linux-gnu-g++`) into
`arm64-env/executorch-<version>/`.

Emulated time is not device latency: this checks outputs, never speed.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgebert.errors import UserError
from edgebert.sources import cache_dir

NEOVERSE_N1_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""
EXTENSIONS = "onnxruntime-extensions==0.15.2"  # the version pyproject.toml pins


def env_dir() -> Path:
    return cache_dir() / "arm64-env"


def missing_tools() -> list[str]:
    return [t for t in ("qemu-aarch64-static", "debootstrap", "dpkg") if not shutil.which(t)]


def unavailable() -> str | None:
    """Why arm64 outputs cannot be checked here, or None when the emulator is ready."""
    if (env_dir() / "ready").exists():
        return None
    if missing_tools():
        return f"missing {', '.join(missing_tools())}"
    return "emulator not built: run `edgebert arm-env` once"


def build(log=print) -> Path:
    """Build the environment once; later calls return the cached one."""
    final = env_dir()
    if (final / "ready").exists():
        return final
    missing = missing_tools()
    if missing:
        raise UserError(f"arm64 emulation needs {', '.join(missing)}; on Debian/Ubuntu: "
                        f"apt-get install qemu-user-static debootstrap")
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".arm64-env.") as tmp:
        root, site = Path(tmp) / "root", Path(tmp) / "site"
        log("arm64-env: debootstrap (first stage, no arm64 code runs)...")
        _run(["debootstrap", "--arch=arm64", "--variant=minbase", "--foreign",
              "--include=python3", "bookworm", str(root), "http://deb.debian.org/debian"],
             "debootstrap")
        debs = sorted((root / "var/cache/apt/archives").glob("*.deb"))
        log(f"arm64-env: unpacking {len(debs)} packages...")
        for deb in debs:
            _run(["dpkg", "-x", str(deb), str(root)], f"dpkg -x {deb.name}")
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        cpu = root / "sys/devices/system/cpu"
        cpu.mkdir(parents=True, exist_ok=True)
        (cpu / "possible").write_text("0\n")
        (cpu / "present").write_text("0\n")
        (root / "proc").mkdir(exist_ok=True)
        (root / "proc/cpuinfo").write_text(NEOVERSE_N1_CPUINFO)
        _fake_midr(root)
        log("arm64-env: aarch64 wheels of onnxruntime, onnxruntime-extensions and numpy...")
        import onnxruntime

        _pip_aarch64(site, f"onnxruntime=={onnxruntime.__version__}", "numpy", EXTENSIONS)
        _publish(Path(tmp), final)
    return final


def _pip_aarch64(site: Path, *packages: str) -> None:
    _run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
          "--target", str(site), "--platform", "manylinux_2_28_aarch64",
          "--platform", "manylinux2014_aarch64", "--python-version", "3.11",
          "--implementation", "cp", "--only-binary=:all:", *packages],
         "pip install (aarch64)")


def _with_extensions(env: Path) -> None:
    """Environments built before the tokenizer-in-graph export lack the extensions."""
    if not (env / "site" / "onnxruntime_extensions").is_dir():
        _pip_aarch64(env / "site", EXTENSIONS)


def _aarch64_wheel(spec: str, glibc: str, work: Path) -> Path:
    """The aarch64 wheel of `spec` (for manylinux_`glibc`), downloaded into work/wheel."""
    _run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
          "--no-deps", "--dest", str(work / "wheel"), "--platform", f"manylinux_{glibc}_aarch64",
          "--python-version", "3.11", "--implementation", "cp", "--only-binary=:all:", spec],
         f"pip download {spec} (aarch64)")
    (wheel,) = (work / "wheel").glob("*.whl")
    return wheel


def _publish(work: Path, final: Path) -> None:
    """Mark `work` (a TemporaryDirectory) ready and move it to `final` in one rename, so a
    killed build never leaves a half environment that looks ready."""
    (work / "ready").write_text("ok\n")
    if final.exists():
        shutil.rmtree(final)
    os.rename(work, final)
    os.mkdir(work)  # TemporaryDirectory removes it on exit


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise UserError(f"arm64-env: {what} failed ({tail[0]})")


def run_onnx(model: Path, batches: list[dict[str, np.ndarray]], timeout: int = 900,
             extensions: bool = False) -> dict:
    """Outputs of `model` on `batches` from ONNX Runtime for aarch64, under qemu;
    `extensions`: register onnxruntime-extensions' custom ops (string-in models)."""
    env = build(log=lambda *_: None)
    if extensions:
        _with_extensions(env)
    res = _emulated(model, batches, env / "site", ["--extensions"] if extensions else [],
                    timeout, "the aarch64 ONNX Runtime")
    return {"machine": res["machine"], "onnxruntime": res["version"],
            "outputs": res["outputs"]}


def run_openvino(model: Path, batches: list[dict[str, np.ndarray]], precision: str | None,
                 timeout: int = 900) -> dict:
    """Outputs of the IR `model` (model.xml) on `batches` from OpenVINO's CPU plugin for
    aarch64, under qemu, compiled in `precision` (its record's; None: OpenVINO's default)
    as edgebert.runtime compiles it there."""
    why = openvino_unavailable()
    if why:
        raise UserError(f"{model}: OpenVINO under arm64 emulation: {why}")
    res = _emulated(model, batches, f"{openvino_dir()}:{env_dir() / 'site'}",
                    ["--openvino", precision or "default"], timeout, "the aarch64 OpenVINO")
    return {"machine": res["machine"], "openvino": res["version"], "outputs": res["outputs"]}


def _emulated(model: Path, batches: list[dict[str, np.ndarray]], path: str | Path,
              flags: list[str], timeout: int, what: str) -> dict:
    """arm64_runner.py on `model` under qemu with PYTHONPATH `path`: the machine it saw, the
    runtime's version, and per batch the outputs in order."""
    root = env_dir() / "root"
    runner = Path(__file__).with_name("arm64_runner.py")
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        flat = {f"{b}:{k}": v for b, batch in enumerate(batches) for k, v in batch.items()}
        np.savez(inputs, n_batches=len(batches), **flat)
        cmd = ["env", "-i", "PATH=/usr/bin:/bin", "QEMU_CPU=neoverse-n1", f"PYTHONPATH={path}",
               "qemu-aarch64-static", "-L", str(root), str(root / "usr/bin/python3.11"),
               str(runner), str(model), str(inputs), str(outputs), *flags]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not outputs.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise UserError(f"{model}: {what} failed under emulation ({tail[0]})")
        data = np.load(outputs)
        return {"machine": str(data["machine"]), "version": str(data["version"]),
                "outputs": [[data[f"{b}:{j}"] for j in range(_count(data, b))]
                            for b in range(len(batches))]}


def _count(data, b: int) -> int:
    return sum(1 for k in data.files if k.startswith(f"{b}:"))


MIDR_EL1 = "0x00000000413fd0c1"
"""Neoverse N1 r3p1's main ID register, at the sysfs path where OpenVINO's ARM kernels
(oneDNN's xbyak_aarch64) read it: without it the CPU plugin segfaults under qemu."""


def _fake_midr(root: Path) -> None:
    ident = root / "sys/devices/system/cpu/cpu0/regs/identification"
    ident.mkdir(parents=True, exist_ok=True)
    (ident / "midr_el1").write_text(MIDR_EL1 + "\n")


def installed_version(package: str) -> str | None:
    """The version of `package` installed beside edgebert, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def openvino_dir() -> Path:
    return env_dir() / f"openvino-{installed_version('openvino')}"


def openvino_unavailable() -> str | None:
    """Why an OpenVINO IR cannot be run under emulation here, or None when it can: the
    aarch64 wheel of the installed openvino is fetched by `edgebert arm-env`, never in the
    middle of a stage."""
    why = unavailable()
    if why:
        return why
    if installed_version("openvino") is None:
        return "openvino not installed (pip install 'edgebert[openvino]')"
    if not (openvino_dir() / "ready").exists():
        return "OpenVINO for aarch64 not fetched: run `edgebert arm-env` once"
    return None


def fetch_openvino(log=print) -> Path:
    """The aarch64 wheel of the installed openvino, unpacked into the environment once
    (about 170 MB). Of its dependencies the runtime imports only numpy, which the
    environment has (openvino-telemetry serves its conversion tools)."""
    final = openvino_dir()
    if (final / "ready").exists():
        return final
    if installed_version("openvino") is None:
        raise UserError("OpenVINO under arm64 emulation: openvino not installed "
                        "(pip install 'edgebert[openvino]')")
    import zipfile

    env = build(log=log)
    _fake_midr(env / "root")  # environments built before OpenVINO was checked lack it
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".openvino.") as tmp:
        work = Path(tmp)
        log(f"arm64-env: OpenVINO {installed_version('openvino')} for aarch64...")
        wheel = _aarch64_wheel(f"openvino=={installed_version('openvino')}", "2_35", work)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(work)
        shutil.rmtree(work / "wheel")
        _publish(work, final)
    return final


CROSS_COMPILER = "aarch64-linux-gnu-g++"
EXECUTORCH_LIBS = ("executorch", "executorch_backend_xnnpack", "executorch_kernels_optimized",
                   "executorch_kernels_quantized", "executorch_threadpool")
"""What pte_runner links: the runtime, the XNNPACK delegate and the kernels for what stays
outside it (each registers itself when loaded, so they are linked --no-as-needed)."""


def executorch_version() -> str | None:
    return installed_version("executorch")


def pte_dir() -> Path:
    return env_dir() / f"executorch-{executorch_version()}"


def pte_buildable() -> str | None:
    """Why `build_pte_runner` cannot build (or find built) the runner here, or None."""
    why = unavailable()
    if why:
        return why
    if executorch_version() is None:
        return "executorch not installed (pip install 'edgebert[executorch]')"
    if not (pte_dir() / "ready").exists() and not shutil.which(CROSS_COMPILER):
        return f"missing {CROSS_COMPILER} (apt-get install g++-aarch64-linux-gnu)"
    return None


def pte_unavailable() -> str | None:
    """Why a .pte cannot be run under emulation here, or None when it can: the runner is
    built by `edgebert arm-env`, never in the middle of an export."""
    why = pte_buildable()
    if why is None and not (pte_dir() / "ready").exists():
        return "ExecuTorch's aarch64 runner not built: run `edgebert arm-env` once"
    return why


def build_pte_runner(log=print) -> Path:
    """pte_runner for aarch64, with the aarch64 ExecuTorch libraries it loads, built once
    (the wheel of the installed executorch version; its headers are dropped after)."""
    final = pte_dir()
    if (final / "ready").exists():
        return final
    why = pte_buildable()
    if why:
        raise UserError(f"ExecuTorch under arm64 emulation: {why}")
    import zipfile

    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".executorch.") as tmp:
        work = Path(tmp)
        log(f"arm64-env: ExecuTorch {executorch_version()} for aarch64 (wheel, headers and "
            f"libraries) and pte_runner...")
        wheel = _aarch64_wheel(f"executorch=={executorch_version()}", "2_28", work)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(work / "unpacked", [n for n in z.namelist() if n.startswith(
                ("executorch/include/", "executorch/lib/"))])
        et = work / "unpacked" / "executorch"
        (work / "lib").mkdir()
        for lib in EXECUTORCH_LIBS:
            shutil.copy2(et / "lib" / f"lib{lib}.so", work / "lib")
        _run([CROSS_COMPILER, "-std=c++17", "-O2", "-DC10_USING_CUSTOM_GENERATED_MACROS",
              f"-I{et / 'include'}", f"-I{et / 'include/executorch/runtime/core/portable_type/c10'}",
              str(Path(__file__).with_name("pte_runner.cpp")), "-o", str(work / "pte_runner"),
              f"-L{work / 'lib'}", "-Wl,--no-as-needed", *(f"-l{lib}" for lib in EXECUTORCH_LIBS)],
             "compiling pte_runner for aarch64")
        shutil.rmtree(work / "wheel")
        shutil.rmtree(work / "unpacked")
        _publish(work, final)
    return final


def run_pte(model: Path, batches: list[list[np.ndarray]], timeout: int = 1800
            ) -> list[list[np.ndarray]]:
    """Outputs of the .pte `model` on `batches` (each the program's int64 inputs, in its
    order) from ExecuTorch for aarch64, under qemu."""
    env, runner = build(log=lambda *_: None), build_pte_runner(log=lambda *_: None)
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        with open(inputs, "wb") as f:
            for args in batches:
                f.write(struct.pack("<i", len(args)))
                for a in args:
                    f.write(struct.pack(f"<{a.ndim + 1}i", a.ndim, *a.shape))
                    f.write(np.ascontiguousarray(a, "<i8").tobytes())
        cmd = ["env", "-i", "QEMU_CPU=neoverse-n1", f"LD_LIBRARY_PATH={runner / 'lib'}",
               "qemu-aarch64-static", "-L", str(env / "root"), str(runner / "pte_runner"),
               str(model), str(inputs), str(outputs)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not outputs.exists():
            tail = [line for line in (proc.stderr or proc.stdout).strip().splitlines()
                    if "pte_runner" in line][-1:] or [f"exit {proc.returncode}"]
            raise UserError(f"{model}: the aarch64 ExecuTorch runtime failed under emulation "
                            f"({tail[0]})")
        return _read_outputs(outputs.read_bytes())


def _read_outputs(data: bytes) -> list[list[np.ndarray]]:
    """pte_runner's output file: per call, its float32 outputs."""
    calls, at = [], 0
    while at < len(data):
        (n,) = struct.unpack_from("<i", data, at)
        at += 4
        outs = []
        for _ in range(n):
            (ndim,) = struct.unpack_from("<i", data, at)
            dims = struct.unpack_from(f"<{ndim}i", data, at + 4)
            at += 4 * (ndim + 1)
            count = int(np.prod(dims))
            outs.append(np.frombuffer(data, "<f4", count, at).reshape(dims).copy())
            at += 4 * count
        calls.append(outs)
    return calls
