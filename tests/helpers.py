"""What the tests share: tiny models and data built in a temporary directory, and the
CLI run in-process. Nothing here touches the network."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from click.testing import CliRunner

FAST = ["--batch-size", "8", "--lr", "3e-3", "--warmup", "0", "--threads", "1"]
"""Training options that make a tiny model learn the toy tasks in seconds."""
WORDS = ("good great fine superb lovely bad awful poor dull boring movie film plot actor "
         "story was is the a and but not very it this of to in paris john acme ibm works "
         "at lives who where what when capital france").split()
POSITIVE = ["good", "great", "fine", "superb", "lovely"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
FILLER = ["movie", "film", "plot", "actor", "story", "was", "is", "the", "a", "and", "it"]


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (the folder is no package), to test its functions;
    the folder goes on sys.path, as `python benchmarks/<name>.py` puts it, for the modules
    the scripts share (common, store)."""
    import importlib.util

    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    script = folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_bench", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import does: dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def build_tiny_bert(path: Path, layers: int = 2) -> Path:
    """Save an untrained BERT encoder and its fast tokenizer, like a hub checkpoint."""
    import torch
    from transformers import BertConfig, BertModel

    from edgebert.modeling import save_tokenizer
    from edgebert.vocab import wordpiece

    path.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + letters
                               + [f"##{c}" for c in letters]))  # unique, order kept
    save_tokenizer(wordpiece(vocab), path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)
    BertModel(config).save_pretrained(path, safe_serialization=True)
    return path


FAMILY_CONFIGS = {
    "bert": ("BertConfig", {}),
    "roberta": ("RobertaConfig", {"type_vocab_size": 1}),
    "electra": ("ElectraConfig", {"embedding_size": 16}),
    "distilbert": ("DistilBertConfig", {"hidden_dim": 64}),
    "albert": ("AlbertConfig", {"embedding_size": 16}),
}
"""The families' config classes, and what the family does differently (RoBERTa: one token
type; ELECTRA and ALBERT: an embedding narrower than the hidden size)."""


def build_tiny(path: Path, family: str, layers: int = 4) -> Path:
    """An untrained encoder of `family` (width 32, 2 heads) with the tiny WordPiece
    tokenizer, saved like a hub checkpoint."""
    import torch
    import transformers

    build_tiny_bert(path)  # the tokenizer (its BERT weights are replaced below)
    for f in path.glob("*.safetensors"):
        f.unlink()
    name, extra = FAMILY_CONFIGS[family]
    vocab = len((path / "vocab.txt").read_text().split())
    common = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=layers,
                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=130,
                  pad_token_id=0)
    config = getattr(transformers, name)(**common, **extra)
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_roberta_bpe(path: Path, layers: int = 4) -> Path:
    """A RoBERTa with a byte-level BPE tokenizer (`edgebert tokenizer train --kind bpe`'s,
    not WordPiece), untrained."""
    import torch
    import transformers

    from edgebert.stages.pretrain.tokenizer import train_tokenizer

    corpus = path.parent / f"{path.name}-corpus.txt"
    corpus.write_text("".join(" ".join(WORDS[i:] + WORDS[:i]) + "\n"
                              for i in range(len(WORDS))))
    train_tokenizer(corpus, path, vocab_size=300, min_frequency=1, kind="bpe",
                    log=lambda *_: None)
    tok = transformers.AutoTokenizer.from_pretrained(str(path))
    config = transformers.RobertaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=130, type_vocab_size=1,
        pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    transformers.RobertaModel(config).save_pretrained(path, safe_serialization=True)
    return path


def sentiment_rows(n: int, seed: int = 0) -> list[dict]:
    """Sentences whose label is carried by one sentiment word: learnable in a few steps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        words = rng.sample(FILLER, 4) + [word]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": "pos" if label else "neg"})
    return rows


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def ner_conll(path: Path, n: int = 60, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        sent = [("john", "B-person"), ("works", "O"), ("at", "O"), ("acme", "B-company")]
        if rng.random() < 0.5:
            sent = [("the", "O"), ("film", "O"), ("was", "O"), ("in", "O"), ("paris", "B-loc")]
        lines += [f"{t}\t{g}" for t, g in sent] + [""]
    path.write_text("\n".join(lines) + "\n")
    return path


def choice_rows(n: int, seed: int = 0, choices: int = 4) -> list[dict]:
    """Multiple choice: a filler context; the right ending is the one with a positive
    word, the others carry negative ones (learnable pair by pair in a few steps)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        endings = [" ".join(rng.sample(FILLER, 2) + [rng.choice(NEGATIVE)])
                   for _ in range(choices - 1)]
        label = rng.randrange(choices)
        endings.insert(label, " ".join(rng.sample(FILLER, 2) + [rng.choice(POSITIVE)]))
        rows.append({"context": " ".join(rng.sample(FILLER, 5)), "choices": endings,
                     "label": label})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def squad_json(path: Path, n: int = 40) -> Path:
    paragraphs = []
    for i in range(n):
        ctx = "paris is the capital of france and john works at acme"
        qas = [{"id": f"q{i}", "question": "what is the capital of france",
                "answers": [{"text": "paris", "answer_start": 0}]}]
        if i % 2:
            qas = [{"id": f"q{i}", "question": "where john works",
                    "answers": [{"text": "acme", "answer_start": ctx.index("acme")}]}]
        paragraphs.append({"context": ctx, "qas": qas})
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


def run_cli(*args) -> tuple[int, str]:
    """`edgebert ARGS` in-process: (exit code, output); a crash re-raises its exception."""
    from edgebert.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


def finetune(tiny_bert, task, out, *extra) -> dict:
    """`edgebert finetune` with FAST settings; returns metrics.json."""
    code, output = run_cli("finetune", "--model", tiny_bert, "--task", task, "--out", out,
                           *FAST, *extra)
    assert code == 0, output
    return json.loads((Path(out) / "metrics.json").read_text())


def refused_without(package: str, install: str, teacher: Path, tmp_path: Path, *options) -> None:
    """`edgebert export --model TEACHER OPTIONS` in a Python where `import package` fails (a
    package of that name that raises ImportError, first on sys.path) exits 2 with one line
    naming `install`, and writes nothing."""
    import subprocess

    block = tmp_path / "block"
    (block / package).mkdir(parents=True)
    (block / package / "__init__.py").write_text(f"raise ImportError('no {package} here')\n")
    out = tmp_path / "out"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from edgebert.cli import main; "
            "main(['export', '--model', sys.argv[2], '--out', sys.argv[3], *sys.argv[4:]])")
    res = subprocess.run([sys.executable, "-c", code, str(block), str(teacher), str(out),
                          *options], capture_output=True, text=True, check=False)
    assert res.returncode == 2, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and install in lines[0], res.stderr
    assert not out.exists() and not Path(str(out) + ".partial").exists()
