"""Time one artifact in this process and print the samples as one JSON line.

    python -m edgebert.bench.worker MODEL_DIR --batch 1 --seq 128 --threads 2 --runs 50
    python -m edgebert.bench.worker MODEL_DIR --threads 2 --workloads '[{"batch": 1,
        "seq": 128, "warmup": 10, "runs": 30}, {"texts": "t.json", "warmup": 5, "runs": 100}]'

Run by `edgebert.bench.latency.interleaved_workloads`, never in the same process as
another artifact: PyTorch's and ONNX Runtime's spinning thread pools fight
for the cores and inflate each other's times (see DESIGN.md). One process
times every workload of its turn (`--workloads`: each grid point and the
texts, one after the other, each after its own warm-up) on the one model it
opened: starting a process (importing the runtime, loading the model) costs
seconds, timing a workload a fraction of that.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
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


def reset_peak_rss() -> bool:
    """Start peak_rss_mb again from the memory held now (Linux 4.0+: clear_refs 5 resets
    VmHWM); False where it cannot, and the peak keeps counting from the process start."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def time_model(path: str, batch: int, seq: int, threads: int, warmup: int, runs: int,
               config: dict[str, str] | None = None) -> dict:
    """Any artifact (its model file as `formats.model_file` picks it: PyTorch weights first)
    or model file, with the settings an app ships: fixed threads, the runtime's defaults,
    the precision its stage.json records. `config`: ONNX Runtime session config entries to
    time instead (benchmarks/ort_session_options.py)."""
    if config is None:
        return time_workloads(path, [{"batch": batch, "seq": seq, "warmup": warmup,
                                      "runs": runs}], threads)["results"][0]
    from edgebert.formats.ort import OrtRunner, session

    file = timed_file(path)[0]
    feeds = _padded(file, batch, seq)
    runner = OrtRunner(session(file, threads, custom_ops="text" in feeds, config=config))
    return {"samples_ms": _time_padded(runner, feeds, warmup, runs),
            "peak_rss_mb": peak_rss_mb()}


def time_texts(path: str, texts: list[str], threads: int, warmup: int, runs: int,
               max_length: int = 128) -> dict:
    """What an app sees: one real text at a time (batch 1, its own length, truncated to
    `max_length` tokens), string to logits, tokenizing included (`tokenizers`, the same
    Rust tokenizer for every artifact; inside the graph for a model that takes text).
    Sample i is text i modulo len(texts), so every artifact times the same texts."""
    return time_workloads(path, [{"texts": texts, "warmup": warmup, "runs": runs,
                                  "max_length": max_length}], threads)["results"][0]


def time_workloads(path: str, workloads: list[dict], threads: int) -> dict:
    """Every workload of one turn on the one model this process opens: {"pid", "results":
    one per workload, in order ({"samples_ms", "peak_rss_mb"}, a texts workload's "tokens"
    too)}. A workload is {"batch", "seq"} (padded inputs, `time_model`) or {"texts": a list
    of strings or a JSON file of them} (`time_texts`), with its "warmup" and "runs"; each is
    checked before the model loads, and warmed up before it is timed. A workload's
    peak_rss_mb is the peak after loading, or the one since the workload began where higher
    (Linux: `reset_peak_rss`; elsewhere the process's peak so far); what an earlier workload
    left allocated (a runtime's arena, torch's cache) counts in a later one's, so a large
    grid point inflates the texts' figure a little."""
    from edgebert.formats import open_model, read_record

    file = timed_file(path)[0]
    record = read_record(file)
    timers = [_texts_timer(file, record, w) if "texts" in w
              else _padded_timer(file, w) for w in workloads]  # refuse before loading
    runner, _ = open_model(file, threads, record=record)
    loaded = peak_rss_mb()
    results = []
    for i, timer in enumerate(timers):
        reset = i > 0 and reset_peak_rss()  # the first one's peak is the process's
        res = timer(runner)
        results.append(res | {"peak_rss_mb": max(loaded, peak_rss_mb()) if reset
                              else peak_rss_mb()})
    return {"pid": os.getpid(), "results": results}


def timed_file(path: str):
    """(model file, format) a turn opens for `path`: what `formats.model_file` finds, else
    `path` itself as PyTorch weights (a transformers directory)."""
    from pathlib import Path

    from edgebert.formats import model_file

    return model_file(path) or (Path(path), "pytorch")


def _padded_timer(file, workload: dict):
    """Times `workload`'s batch x seq padded inputs on a runner: {"samples_ms"}."""
    feeds = _padded(file, workload.get("batch", 1), workload.get("seq", 128))
    return lambda runner: {"samples_ms": _time_padded(runner, feeds, workload["warmup"],
                                                      workload["runs"])}


def _padded(file, batch: int, seq: int) -> dict:
    """The feeds of batch x seq padded inputs: random token ids, or for a model with the
    tokenizer inside, one text of `seq` tokens."""
    import numpy as np

    _max_tokens(str(file), seq)
    text = _text_input(str(file), batch, seq)
    rng = np.random.default_rng(0)
    low, high = _id_range(str(file))
    shape = _shape(str(file), batch, seq)
    feeds = {"input_ids": rng.integers(low, high, shape, dtype=np.int64),
             "attention_mask": np.ones(shape, np.int64),
             "token_type_ids": np.zeros(shape, np.int64)}
    # a one-file model takes strings (a pair model a second one; a runner drops what its
    # model does not take)
    return {"text": text, "text_pair": text} if text is not None else feeds


def _time_padded(runner, feeds: dict, warmup: int, runs: int) -> list[float]:
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        runner(feeds)
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


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


def _texts_timer(file, record: dict, workload: dict):
    """Times `workload`'s texts one at a time on a runner (see `time_texts`): {"samples_ms",
    "tokens"}."""
    import numpy as np
    from tokenizers import Tokenizer

    texts = workload["texts"]
    if isinstance(texts, str):
        texts = json.loads(open(texts, encoding="utf-8").read())
    warmup, runs = workload["warmup"], workload["runs"]
    folder = file if file.is_dir() else file.parent
    text_in = record.get("input") == "text"
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(workload.get("max_length", 128))
    tok.no_padding()

    def timed(runner) -> dict:
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
        return {"samples_ms": samples, "tokens": tokens}

    return timed


TURN_LIMIT_S = 3600
"""A forked turn that has not answered in this long is killed (SIGALRM), and its turn
fails: a lock that a library's helper thread held at the fork would otherwise hang the
bench."""


def serve(preload: list[str]) -> None:
    """Answer turns read from stdin, a JSON line each ({"path", "workloads", "threads"}),
    each in a fresh process forked from this one, and write a JSON line per turn: what the
    child's `time_workloads` returned ({"pid", "results"}), or {"error"}.

    The runtime is imported here once (`preload`: torch and transformers take 4-5 s of a
    PyTorch worker's start on 2 cores, timing it a fraction of a second), and no model is
    opened here: each child opens the model, starts its runtime's thread pool and allocates
    its buffers itself, as a fresh interpreter would, and exits after its turn. Libraries
    may start helper threads at import (numpy's BLAS); a child that inherited a lock one of
    them held would hang, so a child is killed after TURN_LIMIT_S. The answers go to this
    process's own copy of stdout, and fd 1 to stderr: a runtime that prints cannot corrupt
    them. Linux only (`latency.Turns` starts a fresh interpreter elsewhere: macOS's system
    libraries are not safe to fork)."""
    import importlib
    import traceback

    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what anything prints goes to stderr, not into the answers
    for name in preload:
        importlib.import_module(name)
    for line in sys.stdin:
        turn = json.loads(line)
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the turn's process: whatever happens, it ends here
            code = 1
            try:
                os.close(read)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)  # the turns are the server's to read
                signal.alarm(TURN_LIMIT_S)
                try:
                    out = time_workloads(turn["path"], turn["workloads"], turn["threads"])
                    code = 0
                except SystemExit as err:  # a refusal in one line (_max_tokens, _text_input)
                    out = {"error": str(err.code)}
                except BaseException as err:  # noqa: BLE001  (any failure is the answer)
                    traceback.print_exc()
                    out = {"error": f"{type(err).__name__}: {err}"}
                with os.fdopen(write, "w") as f:
                    f.write(json.dumps(out))
                sys.stderr.flush()
            finally:
                os._exit(code)  # no atexit handlers: they belong to the server
        os.close(write)
        with os.fdopen(read) as f:
            answer = f.read()
        _, status = os.waitpid(pid, 0)
        try:
            json.loads(answer)
        except ValueError:  # killed before or while answering (a crash, the time limit)
            answer = json.dumps({"error": f"the timing process died ({_died(status)})"})
        answers.write(answer + "\n")
        answers.flush()


def _died(status: int) -> str:
    """How a child ended, in words.

    >>> import signal
    >>> _died(signal.SIGALRM)
    'signal 14: no answer in 3600 s'
    """
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        late = sig == signal.SIGALRM
        return f"signal {sig}" + (f": no answer in {TURN_LIMIT_S} s" if late else "")
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("path", nargs="?")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--texts", help="a JSON list of strings: time these (batch 1) instead")
    p.add_argument("--workloads", help="a JSON list of workloads ({batch, seq, warmup, runs} "
                   "or {texts: a JSON file, warmup, runs}), timed one after the other on the "
                   "one model: prints {pid, results: one per workload}; the options above "
                   "but --threads are then unused")
    p.add_argument("--serve", metavar="MODULES", help="comma-separated modules to import "
                   "once; then answer turns from stdin, each in a process forked from this "
                   "one (`serve`); the path and the options above are then unused")
    a = p.parse_args()
    if a.serve is not None:
        serve([m for m in a.serve.split(",") if m])
        return
    if a.path is None:
        p.error("name the artifact to time (or --serve)")
    if a.workloads:
        print(json.dumps(time_workloads(a.path, json.loads(a.workloads), a.threads)))
        return
    if a.texts:
        texts = json.loads(open(a.texts, encoding="utf-8").read())
        print(json.dumps(time_texts(a.path, texts, a.threads, a.warmup, a.runs)))
        return
    print(json.dumps(time_model(a.path, batch=a.batch, seq=a.seq, threads=a.threads,
                                warmup=a.warmup, runs=a.runs)))


if __name__ == "__main__":
    main()
