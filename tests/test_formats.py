"""formats: which model file an artifact runs from, and ORT sessions, without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgebert.errors import UserError
from edgebert.formats import EXPORTS_FIRST, model_file, require_model_file, session


def test_model_file_order_and_refusal(tmp_path):
    assert model_file(tmp_path) is None
    for name in ("model.pt2", "model.ort", "model.onnx"):
        (tmp_path / name).write_bytes(b"x")
    assert model_file(tmp_path) == (tmp_path / "model.onnx", "onnx")
    assert model_file(tmp_path, ("model.ort", "model.onnx")) == (tmp_path / "model.ort", "ort")
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert model_file(tmp_path)[1] == "pytorch"  # weights first: the model the rest came from
    assert model_file(tmp_path, EXPORTS_FIRST)[1] == "onnx"  # a report names the export
    assert model_file(tmp_path / "model.ort") == (tmp_path / "model.ort", "ort")  # a file itself
    with pytest.raises(UserError, match=r"no model\.pt or model\.safetensors to do it"):
        require_model_file(tmp_path / "model.onnx", ("model.pt", "model.safetensors"), "to do it")


def test_session_names_the_file_it_cannot_load(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(UserError, match="model.onnx: ONNX Runtime cannot load it"):
        session(bad)
    with pytest.raises(ValueError, match="cannot load"):  # the runtime's BundleError kind
        session(bad, error=ValueError)


def test_session_takes_config_entries(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    path = tmp_path / "model.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])],
                                                  "g", [x], [y])), str(path))
    key = "session.dynamic_block_base"
    assert session(path, 2, config={key: "7"}).get_session_options() \
        .get_session_config_entry(key) == "7"
    with pytest.raises(RuntimeError, match="does not have configuration"):  # ORT's defaults
        session(path, 2).get_session_options().get_session_config_entry(key)


def test_formats_and_runtime_import_no_torch():
    code = ("import sys, edgebert.formats, edgebert.runtime; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_torch_runner_gives_qa_start_and_end_logits(tmp_path):
    """A question-answering model's output is start and end logits, stacked [B, 2, L], as
    every other format gives them (the bench worker and evaluate read it)."""
    import numpy as np
    from transformers import BertConfig, BertForQuestionAnswering

    from edgebert.formats.torch import TorchRunner

    model = BertForQuestionAnswering(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=32)).eval()
    feeds = {"input_ids": np.ones((3, 7), np.int64), "attention_mask": np.ones((3, 7), np.int64)}
    (out,) = TorchRunner(model, ("input_ids", "attention_mask"), keywords=True)(feeds)
    assert out.shape == (3, 2, 7)


def test_each_writer_and_quantizer_a_table_names_exists():
    """`export` runs the writer a format names, `quantize` the quantizer a target names:
    each is a function where its line says, and `--format` offers the formats written."""
    import pkgutil
    import typing

    from edgebert.formats import FORMATS
    from edgebert.stages.export.config import ExportFormat
    from edgebert.targets import TARGETS

    written = [f for f in FORMATS.values() if f.writer]
    assert typing.get_args(ExportFormat) == tuple(f.name for f in written) == (
        "onnx", "ort", "openvino", "executorch", "torchscript")
    for name in [f.writer for f in written] + [t.quantizer for t in TARGETS.values()]:
        assert callable(pkgutil.resolve_name(name)), name
    assert "quantizer" not in TARGETS["arm64"].record()  # stage.json's preset as it was


def test_torch_free_formats_never_import_torch():
    """The `runtime` contract of pyproject.toml, for the module of every format the registry
    calls torch-free (found at import, so no contract names them): no chain of imports,
    lazy ones included, reaches torch or transformers. The modules of torch's formats are
    still importable without it: the registry imports them all."""
    import subprocess
    import sys

    import grimp

    from edgebert.formats import FORMATS

    graph = grimp.build_graph("edgebert", include_external_packages=True)
    free = {f.opener.__module__ for f in FORMATS.values() if f.torch_free}
    assert free >= {"edgebert.formats.ort", "edgebert.formats.openvino"}
    for module in sorted(free):
        for banned in ("torch", "transformers"):
            chain = graph.find_shortest_chain(importer=module, imported=banned)
            assert chain is None, " -> ".join(chain)
    loaded = subprocess.run([sys.executable, "-c", "import sys, edgebert.formats, edgebert.runtime;"
                             "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_formats_are_declared_beside_their_openers_in_reading_order():
    from edgebert.formats import FORMATS, SERVED_FILES

    assert list(FORMATS) == ["pytorch", "onnx", "ort", "openvino", "executorch", "torchscript",
                             "pt2"]
    assert SERVED_FILES == ("model.onnx", "model.ort", "model.xml", "model.pte")
    for f in FORMATS.values():
        assert f.opener.__module__.startswith("edgebert.formats."), f.name
