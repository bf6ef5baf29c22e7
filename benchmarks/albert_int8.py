"""What ALBERT's INT8 fallback buys: ORT's fuser does not match the attention of every
repetition of its shared layer; quantize accepts that (one of each fused op required) and
the unfused repetition runs as INT8 MatMuls.

    python benchmarks/albert_int8.py      # -> store rows, suite albert_int8

No ALBERT weights are packaged, so the model is an ALBERT of MiniLM's width (6
repetitions of one layer, hidden 384, 12 heads, 128-wide embeddings, MiniLM's
tokenizer) from random weights, fine-tuned 60 steps on Rotten Tomatoes: its accuracy
means nothing; the fused-op counts, the INT8 parity against FP32 and the latency ratio
(FP32 ONNX export against the INT8 artifact, one interleaved `edgebert bench` run) are
the point.
"""

from __future__ import annotations

import json
from pathlib import Path

import common
from common import record, run, usage

SUITE = "albert_int8"
RUNS = common.RUNS / "albert"


def base(path: Path) -> Path:
    import torch
    from transformers import AlbertConfig, AlbertModel

    from edgebert.modeling import load_tokenizer
    from edgebert.sources import resolve_model

    if (path / "model.safetensors").exists():
        return path
    tok = load_tokenizer(resolve_model("minilm-l6"))
    config = AlbertConfig(vocab_size=len(tok), embedding_size=128, hidden_size=384,
                          num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                          pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    AlbertModel(config).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(str(path))
    return path


def main() -> None:
    model = base(RUNS / "base")
    teacher, int8, fp32 = RUNS / "finetuned", RUNS / "int8", RUNS / "fp32_onnx"
    run(["edgebert", "finetune", "--model", str(model), "--task", "rotten-tomatoes",
         "--max-steps", "60", "--lr", "1e-4", "--out", str(teacher)])
    run(["edgebert", "quantize", "--model", str(teacher), "--target", "x86-avx2",
         "--max-drop", "100", "--out", str(int8)])
    run(["edgebert", "export", "--model", str(teacher), "--format", "onnx", "--out", str(fp32)])
    bench = RUNS / "bench.json"
    run(["edgebert", "bench", str(fp32), str(int8), "--batch", "1", "--seq", "128",
         "--rounds", "6", "--runs", "20", "--out", str(bench)])
    q = json.loads((int8 / "metrics.json").read_text())
    lat = {Path(r["path"]).name: r["p50_ms"] for r in json.loads(bench.read_text())["results"]}
    result = {"fused_nodes": q.get("fused_nodes"), "parity_vs_fp32": q.get("parity_vs_fp32"),
              "size_mb": {"fp32_onnx": q.get("fp32_onnx_mb"), "int8": q.get("size_mb")},
              "p50_ms": lat, "speedup_int8_over_fp32_onnx": lat["fp32_onnx"] / lat["int8"]}
    print(json.dumps(result, indent=2))
    record(SUITE, {"albert int8": result}, threads=2, command=common.script_command(__file__),
           notes={"model": "ALBERT, 6 repetitions of one layer, hidden 384, 12 heads, "
                           "embeddings 128, random init + 60 fine-tuning steps on Rotten "
                           "Tomatoes"})


if __name__ == "__main__":
    usage(__doc__)
    main()
