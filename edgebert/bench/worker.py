"""Time one artifact in this process and print the samples as one JSON line.

    python -m edgebert.bench.worker MODEL_DIR --batch 1 --seq 128 --threads 2 --runs 50

Run by `edgebert.bench.latency.interleaved`, never in the same process as
another artifact: PyTorch's and ONNX Runtime's spinning thread pools fight
for the cores and inflate each other's times (see DESIGN.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB.

    Linux keeps ru_maxrss across execve, so a child started by a big parent would
    report the parent's peak; VmHWM belongs to the new address space.
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1 / 1024 / 1024 if sys.platform == "darwin" else 1 / 1024  # bytes on macOS, kB else
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def time_pytorch(path: str, batch: int, seq: int, threads: int, warmup: int, runs: int) -> dict:
    from pathlib import Path

    import torch

    torch.set_num_threads(threads)
    model, takes = _load_pytorch(path)
    g = torch.Generator().manual_seed(0)
    low, high = _id_range(str(Path(path) / "model.safetensors"))
    shape = _shape(path, batch, seq)
    inputs = {"input_ids": torch.randint(low, high, shape, generator=g),
              "attention_mask": torch.ones(shape, dtype=torch.long),
              "token_type_ids": torch.zeros(shape, dtype=torch.long)}
    inputs = {k: v for k, v in inputs.items() if k in takes}
    samples = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(**inputs)
            if i >= warmup:
                samples.append((time.perf_counter() - start) * 1000)
    return {"samples_ms": samples,
            "peak_rss_mb": peak_rss_mb()}


def _load_pytorch(path: str):
    """(model in eval mode, the inputs its family takes) of a PyTorch artifact directory."""
    import transformers

    from edgebert.errors import UserError
    from edgebert.families import family_of, model_inputs
    from edgebert.modeling import from_pretrained  # pruned heads load the same on 4.x and 5.x

    config = transformers.AutoConfig.from_pretrained(path)
    try:
        family_of(config)
    except UserError as err:
        raise SystemExit(f"{path}: {err}") from None
    arch = (config.architectures or ["AutoModel"])[0]
    cls = getattr(transformers, arch, None)  # only a model class of the config's own type
    if getattr(getattr(cls, "config_class", None), "model_type", None) != config.model_type:
        raise SystemExit(f"{path}: architecture {arch} is not a {config.model_type} model")
    return from_pretrained(cls, path).eval(), model_inputs(config)


def time_onnx(path: str, batch: int, seq: int, threads: int, warmup: int, runs: int,
              config: dict[str, str] | None = None) -> dict:
    """ONNX Runtime with the settings an app ships: fixed threads, default optimizations.
    `config`: session config entries to time instead (benchmarks/ort_session_options.py)."""
    import numpy as np

    from edgebert.formats import session

    _max_tokens(path, seq)
    text = _text_input(path, batch, seq)
    sess = session(path, threads, custom_ops=text is not None, config=config)
    rng = np.random.default_rng(0)
    low, high = _id_range(path)
    shape = _shape(path, batch, seq)
    feeds = {"input_ids": rng.integers(low, high, shape, dtype=np.int64),
             "attention_mask": np.ones(shape, np.int64),
             "token_type_ids": np.zeros(shape, np.int64),
             "text": text, "text_pair": text}
    feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        sess.run(None, feeds)
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000)
    return {"samples_ms": samples,
            "peak_rss_mb": peak_rss_mb()}


def _max_tokens(model_file: str, seq: int) -> None:
    """Refuse a sequence longer than the artifact's position table (quantize cuts it to
    the artifact's max_length: quantize/positions.py), in one line."""
    from pathlib import Path

    from edgebert.quantize.positions import max_tokens

    most = max_tokens(Path(model_file).parent)
    if most is not None and seq > most:
        raise SystemExit(f"{model_file}: takes at most {most} tokens (its position table was "
                         f"cut to its max_length); asked for --seq {seq}")


def _text_input(model_file: str, batch: int, seq: int):
    """For a model with the tokenizer inside (stage.json input "text"): one string of
    seq - 2 one-token words, so string-to-label time is measured at `seq` tokens."""
    from pathlib import Path

    import numpy as np

    stage = Path(model_file).with_name("stage.json")
    if not stage.exists() or json.loads(stage.read_text()).get("input") != "text":
        return None
    if batch != 1:
        raise SystemExit(f"{model_file}: the tokenizer is inside; it takes one text: batch 1")
    vocab = json.loads(Path(model_file).with_name("tokenizer.json").read_text())["model"]["vocab"]
    word = "the" if "the" in vocab else next(w for w in vocab if w.isalpha() and w.islower())
    return np.array([" ".join([word] * (seq - 2))], dtype=object)


def _shape(path: str, batch: int, seq: int) -> tuple[int, ...]:
    """Each input's shape: [batch, seq], or what the artifact's task kind feeds (multiple
    choice: [batch, choices, seq]), read from the stage.json beside the model."""
    from pathlib import Path

    from edgebert.kinds import kind

    p = Path(path)
    stage = (p if p.is_dir() else p.parent) / "stage.json"
    task = json.loads(stage.read_text()).get("task") if stage.exists() else None
    return kind(task["kind"]).input_shape(batch, seq) if task else (batch, seq)


def _id_range(model_file: str) -> tuple[int, int]:
    """Token ids inside the vocabulary (config.json beside the model), past the specials."""
    from pathlib import Path

    config = Path(model_file).with_name("config.json")
    vocab = json.loads(config.read_text()).get("vocab_size", 30522) if config.exists() else 100
    return (min(1000, vocab // 2), min(2000, vocab))


def time_texts(path: str, texts: list[str], threads: int, warmup: int, runs: int,
               max_length: int = 128) -> dict:
    """What an app sees: one real text at a time (batch 1, its own length, truncated to
    `max_length` tokens), string to logits, tokenizing included (`tokenizers`, the same
    Rust tokenizer for every artifact; inside the graph for a model that takes text).
    Sample i is text i modulo len(texts), so every artifact times the same texts."""
    from pathlib import Path

    import numpy as np

    from edgebert.formats import model_file, session
    from edgebert.data.features import INPUTS

    file, fmt = model_file(path) or (Path(path), "pytorch")
    folder = file if file.is_dir() else file.parent
    text_in = _text_input(str(file), 1, 3) is not None if fmt in ("onnx", "ort") else False
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(max_length)
    tok.no_padding()
    if fmt in ("onnx", "ort"):
        sess = session(str(file), threads, custom_ops=text_in)
        wanted = {i.name for i in sess.get_inputs()}

        def call(text: str):
            if text_in:
                return sess.run(None, {"text": np.array([text], dtype=object)})
            e = tok.encode(text)
            feeds = {"input_ids": np.array([e.ids], np.int64),
                     "attention_mask": np.array([e.attention_mask], np.int64),
                     "token_type_ids": np.array([e.type_ids], np.int64)}
            return sess.run(None, {k: v for k, v in feeds.items() if k in wanted})
    else:
        import torch

        torch.set_num_threads(threads)
        if fmt == "pytorch":
            model, takes = _load_pytorch(str(folder))

            def module(*args):
                return model(**{k: v for k, v in zip(INPUTS, args) if k in takes})
        else:
            module = torch.jit.load(str(file), map_location="cpu").eval()

        def call(text: str):
            e = tok.encode(text)
            args = [torch.tensor([e.ids]), torch.tensor([e.attention_mask]),
                    torch.tensor([e.type_ids])]
            with torch.inference_mode():
                return module(*args)
    samples, tokens = [], []
    for i in range(warmup + runs):
        text = texts[(i - warmup) % len(texts)] if i >= warmup else texts[i % len(texts)]
        start = time.perf_counter()
        call(text)
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000)
            tokens.append(len(tok.encode(text).ids))  # untimed; what the model saw
    return {"samples_ms": samples, "tokens": tokens, "peak_rss_mb": peak_rss_mb()}


def time_artifact(path: str, **kw) -> dict:
    """An artifact directory (its model file as `formats.model_file` picks it: PyTorch
    weights first) or a model file."""
    from edgebert.formats import model_file

    file, fmt = model_file(path) or (path, "pytorch")
    if fmt in ("onnx", "ort"):
        return time_onnx(str(file), **kw)
    if fmt in ("torchscript", "pt2"):  # TorchScript, or INC's exported program
        return time_torchscript(str(file), **kw)
    return time_pytorch(str(path), **kw)


def time_torchscript(path: str, batch: int, seq: int, threads: int, warmup: int,
                     runs: int) -> dict:
    """A TorchScript module (model.pt) or an exported INT8 program (model.pt2).

    A .pt2 from `quantize --engine inc` is a quantize/dequantize reference graph (FP32
    weights and linear layers between Q/DQ pairs); only `torch.compile` (Inductor's x86
    lowering) turns it into INT8 kernels, as Neural Compressor intends, so it is timed
    compiled: the first warm-up call compiles."""
    import torch

    torch.set_num_threads(threads)
    if path.endswith(".pt2"):
        from pathlib import Path

        from edgebert.quantize.inc import load_program

        module = torch.compile(load_program(Path(path)))
    else:
        module = torch.jit.load(path, map_location="cpu").eval()
    low, high = _id_range(path)
    g = torch.Generator().manual_seed(0)
    shape = _shape(path, batch, seq)
    args = (torch.randint(low, high, shape, generator=g),
            torch.ones(shape, dtype=torch.long), torch.zeros(shape, dtype=torch.long))
    samples = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            module(*args)
            if i >= warmup:
                samples.append((time.perf_counter() - start) * 1000)
    return {"samples_ms": samples,
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("path")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--texts", help="a JSON list of strings: time these (batch 1) instead")
    a = p.parse_args()
    if a.texts:
        texts = json.loads(open(a.texts, encoding="utf-8").read())
        print(json.dumps(time_texts(a.path, texts, a.threads, a.warmup, a.runs)))
        return
    print(json.dumps(time_artifact(a.path, batch=a.batch, seq=a.seq, threads=a.threads,
                                   warmup=a.warmup, runs=a.runs)))


if __name__ == "__main__":
    main()
