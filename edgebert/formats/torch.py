"""PyTorch formats: transformers weights, TorchScript, and exported INT8 programs. torch is
imported when a model is opened, so importing this module stays torch-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebert.data.features import INPUTS
from edgebert.errors import UserError
from edgebert.formats.format import Format


def output_array(res) -> np.ndarray:
    """A model's output as one array: logits [B, C] / [B, L, C], or QA's start and end
    logits stacked [B, 2, L]; a module that returns one tensor, that tensor."""
    import torch

    if getattr(res, "start_logits", None) is not None:
        return torch.stack([res.start_logits, res.end_logits], 1).float().cpu().numpy()
    return getattr(res, "logits", res).float().cpu().numpy()


class TorchRunner:
    """A module behind the runner interface (`inputs`, `outputs`, `runner(feeds)`): numpy in,
    numpy out, no autograd; `autocast` runs it under bf16 autocast (CPUs with AMX-BF16 or
    AVX512-BF16), as a PyTorch user on such a CPU would."""

    def __init__(self, module, inputs: tuple[str, ...], threads: int | None = None,
                 keywords: bool = False, autocast: bool = False):
        import contextlib

        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch, self.module, self.keywords = torch, module, keywords
        self.cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast \
            else contextlib.nullcontext
        self.inputs = set(inputs)
        self.outputs = ["logits"]

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        tensor = self.torch.from_numpy
        with self.torch.inference_mode(), self.cast():
            if self.keywords:
                out = self.module(**{k: tensor(v) for k, v in feeds.items() if k in self.inputs})
            else:
                zeros = np.zeros_like(feeds["input_ids"])  # an input the family does not take
                out = self.module(*(tensor(feeds.get(k, zeros)) for k in INPUTS))
        return [output_array(out)]


def load_pytorch(path: str | Path):
    """(model in eval mode, the inputs its family takes) of a transformers directory; only a
    model class of the config's own type is instantiated."""
    import transformers

    from edgebert.families import family_of, model_inputs
    from edgebert.modeling import from_pretrained  # pruned heads load the same on 4.x and 5.x

    config = transformers.AutoConfig.from_pretrained(str(path))
    family_of(config)  # an unsupported family is a UserError, named
    arch = (config.architectures or ["AutoModel"])[0]
    cls = getattr(transformers, arch, None)
    if getattr(getattr(cls, "config_class", None), "model_type", None) != config.model_type:
        raise UserError(f"{path}: architecture {arch} is not a {config.model_type} model")
    return from_pretrained(cls, str(path)).eval(), model_inputs(config)


def load_program(path: Path):
    """The module of a saved INT8 program (its quantize ops must be registered first)."""
    import torch
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)

    try:
        return torch.export.load(str(path)).module()
    except Exception as err:  # torch raises RuntimeError/KeyError/... for a bad file
        raise UserError(f"{path}: torch cannot load this program ({str(err).splitlines()[0]}); "
                        f"quantize again") from None


def open_pytorch(path: Path, threads: int | None = None, record: dict | None = None,
                 error: type[Exception] = UserError) -> TorchRunner:
    """The transformers model in the directory of `path`; bf16 autocast where its stage.json
    says precision bf16."""
    folder = path if path.is_dir() else path.parent
    model, takes = load_pytorch(folder)
    return TorchRunner(model, takes, threads, keywords=True,
                       autocast=(record or {}).get("precision") == "bf16")


def open_torchscript(path: Path, threads: int | None = None, record: dict | None = None,
                     error: type[Exception] = UserError) -> TorchRunner:
    import torch

    return TorchRunner(torch.jit.load(str(path), map_location="cpu").eval(), INPUTS, threads)


def open_program(path: Path, threads: int | None = None, record: dict | None = None,
                 error: type[Exception] = UserError) -> TorchRunner:
    """An exported INT8 program (model.pt2, `quantize --engine inc`), compiled, for timing:
    it is a quantize/dequantize reference graph that only `torch.compile` (Inductor's x86
    lowering) turns into INT8 kernels, as Neural Compressor intends; the first call
    compiles (and each new input shape recompiles)."""
    import torch

    return TorchRunner(torch.compile(load_program(path)), INPUTS, threads)


def open_program_eager(path: Path, threads: int | None = None, record: dict | None = None,
                       error: type[Exception] = UserError) -> TorchRunner:
    """The same program uncompiled, for scoring: the same numbers quantize scored, without
    a recompile for every padded batch shape."""
    return TorchRunner(load_program(path), INPUTS, threads)


def module_forward(module):
    """A forward over any module that takes the three inputs positionally and returns one
    tensor (PlainOutputs, a TorchScript module, an exported program)."""
    runner = TorchRunner(module, INPUTS)
    return lambda batch: runner(batch)[0]


TORCH_INSTALL = "pip install 'edgebert[full]'"
DECLARED = (
    # the PyTorch weights first: the model every other file in a directory was made from
    Format("pytorch", "model.safetensors", "torch", open_pytorch, order=0, weights=True,
           install=TORCH_INSTALL, preload=("transformers.modeling_utils",)),
    Format("torchscript", "model.pt", "torch", open_torchscript, order=50, install=TORCH_INSTALL,
           writer="edgebert.stages.export.torchscript:write_torchscript"),
    Format("pt2", "model.pt2", "torch", open_program, order=60, install=TORCH_INSTALL,
           score_opener=open_program_eager),
)
