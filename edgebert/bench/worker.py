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


def time_model(path: str, batch: int, seq: int, threads: int, warmup: int, runs: int,
               config: dict[str, str] | None = None) -> dict:
    """Any artifact (its model file as `formats.model_file` picks it: PyTorch weights first)
    or model file, with the settings an app ships: fixed threads, the runtime's defaults,
    the precision its stage.json records. `config`: ONNX Runtime session config entries to
    time instead (benchmarks/ort_session_options.py)."""
    from pathlib import Path

    import numpy as np

    from edgebert.formats import model_file, open_model, read_record
    from edgebert.formats.ort import OrtRunner, session

    file, fmt = model_file(path) or (Path(path), "pytorch")
    _max_tokens(str(file), seq)
    text = _text_input(str(file), batch, seq)
    if config is not None:
        runner = OrtRunner(session(file, threads, custom_ops=text is not None, config=config))
    else:
        runner, _ = open_model(file, threads, record=read_record(file))
    rng = np.random.default_rng(0)
    low, high = _id_range(str(file))
    shape = _shape(str(file), batch, seq)
    feeds = {"input_ids": rng.integers(low, high, shape, dtype=np.int64),
             "attention_mask": np.ones(shape, np.int64),
             "token_type_ids": np.zeros(shape, np.int64)}
    # a one-file model takes strings (a pair model a second one; a runner drops what its
    # model does not take)
    feeds = {"text": text, "text_pair": text} if text is not None else feeds
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        runner(feeds)
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000)
    return {"samples_ms": samples,
            "peak_rss_mb": peak_rss_mb()}


def _max_tokens(model_file: str, seq: int) -> None:
    """Refuse a sequence longer than the artifact's position table (quantize cuts it to
    the artifact's max_length: quantize/positions.py), in one line."""
    from pathlib import Path

    from edgebert.artifact import max_tokens

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
    from tokenizers import Tokenizer

    from edgebert.formats import model_file, open_model, read_record

    file, _ = model_file(path) or (Path(path), "pytorch")
    folder = file if file.is_dir() else file.parent
    record = read_record(file)
    runner, _ = open_model(file, threads, record=record)
    text_in = record.get("input") == "text"
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(max_length)
    tok.no_padding()

    def call(text: str):
        if text_in:
            return runner({"text": np.array([text], dtype=object)})
        e = tok.encode(text)
        return runner({"input_ids": np.array([e.ids], np.int64),
                       "attention_mask": np.array([e.attention_mask], np.int64),
                       "token_type_ids": np.array([e.type_ids], np.int64)})

    samples, tokens = [], []
    for i in range(warmup + runs):
        text = texts[(i - warmup) % len(texts)] if i >= warmup else texts[i % len(texts)]
        start = time.perf_counter()
        call(text)
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000)
            tokens.append(len(tok.encode(text).ids))  # untimed; what the model saw
    return {"samples_ms": samples, "tokens": tokens, "peak_rss_mb": peak_rss_mb()}


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
    print(json.dumps(time_model(a.path, batch=a.batch, seq=a.seq, threads=a.threads,
                                warmup=a.warmup, runs=a.runs)))


if __name__ == "__main__":
    main()
