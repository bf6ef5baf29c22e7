"""What a format is: its model file, the package that runs it, how to open it and how
`edgebert export` writes it. Each module of `edgebert.formats` declares its own (`DECLARED`);
the package collects them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgebert.errors import UserError


@dataclass(frozen=True)
class Format:
    name: str
    file: str
    """The model file in an artifact directory."""
    runtime: str
    """The Python package that runs it (what a user installs): onnxruntime, openvino,
    executorch, torch."""
    opener: Callable
    """(file, threads, record, error) -> runner; `record` is the artifact's stage.json."""
    order: int
    """Where it comes among the model files of one directory (lower first): the PyTorch
    weights first, then what a bundle serves, in the order it picks one."""
    companions: tuple[str, ...] = ()
    """Files that travel with the model file (OpenVINO's weights)."""
    served: bool = False
    """`edgebert bundle` packs it and `edgebert.runtime` runs it (without torch where
    `torch_free`)."""
    weights: bool = False
    """The PyTorch weights every other format of a model is made from."""
    install: str = ""
    score_opener: Callable | None = None
    """What opens it for scoring where that differs from `opener` (timing): pt2
    uncompiled."""
    kernels: str = ""
    """The kernels a timing of it measures, where they, not the machine, are the point
    (ExecuTorch: XNNPACK): bench results say `x86 XNNPACK`, never a phone's latency."""
    preload: tuple[str, ...] = ()
    """Modules that opening a model imports, beside `runtime`, and that take seconds
    (transformers' model classes): `edgebert bench` imports them once per runtime and forks
    each turn's process from there (`bench.worker.serve`)."""
    writer: str = ""
    """"module:function" with which `edgebert export` writes it: (Job) -> Written
    (`edgebert.stages.export.job`); imported only by the export stage. Empty: export does
    not write it (`--format` offers the formats that have one)."""

    @property
    def torch_free(self) -> bool:
        """Its runtime runs without torch (executorch's Python bindings link libtorch)."""
        return self.runtime not in ("torch", "executorch")

    def open(self, file: Path, threads: int | None = None, record: dict | None = None,
             error: type[Exception] = UserError, scoring: bool = False):
        """The runner of `file`, from its opener (`score_opener` where `scoring` and it has
        one)."""
        return ((scoring and self.score_opener) or self.opener)(file, threads, record, error)

    def files(self) -> tuple[str, ...]:
        return (self.file, *self.companions)

    def require(self, error: type[Exception] = UserError) -> None:
        """One line naming what to install, where its runtime cannot be imported (it is
        imported here, as opening the model would)."""
        import importlib

        try:
            importlib.import_module(self.runtime)
        except ImportError:
            raise error(f"{self.name} artifacts need the {self.runtime} package "
                        f"({self.install or 'pip install ' + self.runtime})") from None
