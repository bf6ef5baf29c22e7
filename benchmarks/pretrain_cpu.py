"""Pretraining that helps, shown on a 2-core CPU: two demonstrations, each against the
same model without that pretraining, fine-tuned on a packaged task (Rotten Tomatoes, or
wordnet-mc) with the same settings and seeds.

    python benchmarks/pretrain_cpu.py                 # both: about an hour on 2 cores
    python benchmarks/pretrain_cpu.py --demo continued --corpus more_reviews.txt
    python benchmarks/pretrain_cpu.py --task wordnet-mc --demo scratch
    python benchmarks/pretrain_cpu.py --demo continued --labels 500 --continued-seeds 13 14 15
    python benchmarks/pretrain_cpu.py --task wnut-ner --demo continued   # scored on entity F1
    -> store rows, suite pretrain, a case per demonstration (`continued`, `scratch` for
       Rotten Tomatoes, `continued_wordnet-mc`, `scratch_wordnet-mc` for wordnet-mc)

continued  The packaged MiniLM-L6's pretraining continued with MLM on the task's own
           training texts (plus any --corpus: domain-adaptive pretraining; the packaged
           encoder has no MLM head, so the head starts fresh), then the default recipe's
           teacher fine-tuning; against that fine-tuning of MiniLM as packaged.
           With --labels N, both arms are fine-tuned on N labeled training examples
           only (case `continued_labelsN`): much text, few labels.
scratch    A tiny BERT (2 layers, 128 wide) pretrained with MLM + NSP from random weights
           on the Debian corpus (`edgebert corpus build`, a WordPiece vocabulary of 8,000
           trained on it); against the same shape, tokenizer and seed left random.

Telling a gain from noise: each arm is fine-tuned with the same seeds; the gain is the
mean over the test texts of the difference of seed-averaged correctness, and its
standard error adds the test sample's (paired: both arms are scored on the same texts)
to the seeds' (each arm's accuracy spread over seeds, / sqrt(seeds)) in quadrature.

Runs live in $EDGEBERT_BENCH_RUNS/pretrain (default runs/bench); every stage that
finished is skipped on a rerun, so a killed run goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
from pathlib import Path

import common
from common import record, run, script_command

SUITE = "pretrain"
RUNS = common.RUNS / "pretrain"
TASK = "rotten-tomatoes"  # the task fine-tuned and scored on: --task sets it
PREFIX = {"rotten-tomatoes": "rt", "wordnet-mc": "wnmc", "wnut-ner": "wnut"}
"""Fine-tuned runs are named <prefix>_<model>...; Rotten Tomatoes' were `rt_` first."""
TINY_EPOCHS = {"rotten-tomatoes": "2", "wordnet-mc": "6", "wnut-ner": "10"}
"""wordnet-mc has 3,000 training examples to Rotten Tomatoes' 8,530: more passes."""
# the default recipe's teacher fine-tuning (edgebert/recipes/default.yaml); min_examples
# leaves Rotten Tomatoes' one epoch as it is and gives WNUT's 1,916 tweets 5.2
TEACHER_FINETUNE = ["--epochs", "1", "--lr", "5e-5", "--batch-size", "32", "--eval-every",
                    "100", "--patience", "4", "--max-length", "128", "--group-by-length",
                    "--min-examples", "10000"]
# a tiny model: more passes; the learning rate is picked per arm on dev from TINY_LRS
TINY_FINETUNE = ["--batch-size", "32", "--eval-every", "100",
                 "--patience", "4", "--max-length", "64", "--group-by-length"]
TINY_LRS = ["1e-4", "3e-4", "1e-3"]
# few labels (--labels): the teacher fine-tuning, its passes raised until 5,000 examples
# are seen (10 passes of 500), dev looked at often enough for early stopping to matter
FEW_LABELS = ["--min-examples", "5000", "--max-auto-epochs", "50", "--eval-every", "25"]


def random_init(tok: Path, out: Path, shape: str = "tiny", seed: int = 13) -> Path:
    """A pretraining shape with random weights, saved like a checkpoint: the baseline a
    pretrained model of that shape must beat (the seed `edgebert pretrain` starts from)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from edgebert.stages.pretrain.stage import SHAPES

    if (out / "model.safetensors").exists():
        return out
    tokenizer = AutoTokenizer.from_pretrained(str(tok))
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                         **SHAPES[shape])).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_correct(model: Path) -> list[int]:
    """1 where the fine-tuned `model` got a test text of the task right, else 0: the
    per-example outcomes its `finetune` recorded in metrics.json."""
    test = json.loads((model / "metrics.json").read_text())["test"]
    if "outcomes" not in test:
        raise SystemExit(f"{model}: metrics.json has no test outcomes (fine-tuned by an "
                         f"edgebert that did not record outcomes): remove it and run again")
    correct = [int(p == t) for p, t in zip(test["outcomes"]["pred"], test["outcomes"]["true"])]
    if abs(sum(correct) / len(correct) - test["accuracy"]) > 1e-9:
        raise SystemExit(f"{model}: outcomes give {sum(correct) / len(correct)}, "
                         f"metrics.json {test['accuracy']}")
    return correct


def test_entities(model: Path) -> list[list[int]]:
    """Per test sentence [entities right, found, wanted] of a fine-tuned NER `model`: the
    outcomes its `finetune` recorded, checked against its entity F1."""
    test = json.loads((model / "metrics.json").read_text())["test"]
    counts = test["outcomes"]["entities"]
    if abs(entity_f1(counts) - test["entity_f1"]) > 1e-9:
        raise SystemExit(f"{model}: outcomes give {entity_f1(counts)}, metrics.json "
                         f"{test['entity_f1']}")
    return counts


def entity_f1(counts) -> float:
    """Micro entity F1 of per-sentence [right, found, wanted] counts.

    >>> entity_f1([[1, 2, 1], [0, 0, 1]])
    0.5
    """
    right, found, wanted = (sum(c[i] for c in counts) for i in range(3))
    return 2 * right / (found + wanted) if found + wanted else 0.0


def labeled_subset(n: int, seed: int = 13) -> Path:
    """The task with only `n` of its training examples labeled (a seeded sample; dev and
    test whole), as a local task directory `finetune --task` reads: the setting where a
    user has far more text than labels, which the continued pretraining still reads all of."""
    import random

    from edgebert.config import TaskConfig
    from edgebert.data.tasks import load_task

    task = load_task(TaskConfig(name=TASK))
    if task.kind != "classification":
        raise SystemExit(f"--labels: for a classification task, not {TASK} ({task.kind})")
    if not 0 < n < len(task.splits["train"]):
        raise SystemExit(f"--labels: between 1 and {len(task.splits['train']) - 1} "
                         f"({TASK} has {len(task.splits['train'])} training examples), got {n}")
    out = RUNS / f"{PREFIX[TASK]}_labels{n}_split{seed}"
    if not (out / "test.jsonl").exists():
        out.mkdir(parents=True, exist_ok=True)
        train = task.splits["train"]
        keep = sorted(random.Random(seed).sample(range(len(train)), n))
        for split, rows in (("train", [train[i] for i in keep]), ("dev", task.splits["dev"]),
                            ("test", task.splits["test"])):
            (out / f"{split}.jsonl").write_text("".join(
                json.dumps({"text": ex.text, "label": task.labels[ex.label]}) + "\n"
                for ex in rows), encoding="utf-8")
    return out


def seed_se(scores: list[float]) -> float:
    """Standard error of the mean of one arm's per-seed scores (0 from one seed).

    >>> round(seed_se([0.80, 0.82]), 3)
    0.01
    """
    n = len(scores)
    if n < 2:
        return 0.0
    mean = sum(scores) / n
    return math.sqrt(sum((x - mean) ** 2 for x in scores) / (n - 1) / n)


def gain_with_se(pretrained: list[list[int]], baseline: list[list[int]]) -> dict:
    """The test-accuracy gain of `pretrained` over `baseline` (per seed, per test text:
    1 right, 0 wrong) and its standard error: paired test-sample SE and seed SE added
    in quadrature.

    >>> g = gain_with_se([[1, 1, 1, 0], [1, 1, 0, 1]], [[1, 0, 1, 0], [1, 0, 0, 0]])
    >>> round(g["gain"], 3), round(g["se_test"], 3), round(g["se_seeds"], 3)
    (0.375, 0.239, 0.125)
    """
    import numpy as np

    a, b = np.asarray(pretrained, float), np.asarray(baseline, float)
    d = a.mean(0) - b.mean(0)  # per test text, seed-averaged
    se_test = float(d.std(ddof=1) / math.sqrt(len(d)))
    se_seeds = math.hypot(*(seed_se(x.mean(1).tolist()) for x in (a, b)))
    se = math.hypot(se_test, se_seeds)
    return {"gain": float(d.mean()), "se": se, "se_test": se_test, "se_seeds": se_seeds,
            "gain_over_se": float(d.mean()) / se if se else None,
            "beyond_two_se": bool(se and d.mean() > 2 * se)}


def entity_gain_with_se(pretrained: list, baseline: list) -> dict:
    """The entity-F1 gain of `pretrained` over `baseline` (per seed, per test sentence:
    [right, found, wanted]) and its standard error: the reports' paired bootstrap over the
    sentences (`edgebert.metrics.paired_se`; each arm's counts summed over its seeds: micro
    F1 over every seed's entities) and the seeds' spread, in quadrature, as `gain_with_se`.

    >>> g = entity_gain_with_se([[[1, 1, 1], [1, 1, 1]]], [[[1, 1, 1], [0, 1, 1]]])
    >>> round(g["gain"], 3), g["se_seeds"]
    (0.5, 0.0)
    """
    import numpy as np

    from edgebert.metrics import paired_se

    a, b = ([[int(v) for v in row] for row in np.asarray(x).sum(0)]
            for x in (pretrained, baseline))  # [sentences, 3], summed over seeds
    gain = entity_f1(a) - entity_f1(b)
    se_test = paired_se(*({"entities": c, "true": [row[2] for row in c]} for c in (a, b)),
                        "entity_f1") / 100
    se_seeds = math.hypot(*(seed_se([entity_f1(s) for s in x]) for x in (pretrained, baseline)))
    se = math.hypot(se_test, se_seeds)
    return {"metric": "entity_f1", "gain": gain, "se": se, "se_test": se_test,
            "se_seeds": se_seeds, "gain_over_se": gain / se if se else None,
            "beyond_two_se": bool(se and gain > 2 * se)}


def entity_arm(counts: list) -> dict:
    """Test entity F1 per seed and the mean (its SE: the seeds' spread; the test sample's
    is in the gain's paired SE)."""
    f1s = [entity_f1(c) for c in counts]
    return {"entity_f1": sum(f1s) / len(f1s), "se_seeds": seed_se(f1s) if len(f1s) > 1 else None,
            "per_seed": f1s}


def arm(correct: list[list[int]]) -> dict:
    """Test accuracy per seed, the mean and its standard error (binomial over the test
    texts, and the seed spread, in quadrature)."""
    accs = [sum(c) / len(c) for c in correct]
    mean, n = sum(accs) / len(accs), len(correct[0])
    return {"accuracy": mean, "se": math.sqrt(mean * (1 - mean) / n + seed_se(accs) ** 2),
            "per_seed": accs}


def compare(models: dict[str, Path], finetune: list[str], seeds: list[int], seconds: dict,
            lrs: list[str] | None = None, labels: int = 0) -> dict:
    """Fine-tune each model with each seed; accuracy per arm and the gain of the first.

    With `lrs`, each arm first picks its own learning rate by dev accuracy (first seed),
    as BERT's fine-tuning recipe does: a pretrained start and a random one do not share
    a best step size, and test is never looked at to choose it. With `labels`, every
    fine-tuning sees only that many labeled training examples (`labeled_subset`).
    """
    correct, search = {}, {}
    from edgebert.data.tasks import packaged_metric

    metric = packaged_metric(TASK)  # accuracy, or NER's entity F1 (per-sentence counts)
    ner = metric == "entity_f1"
    outcomes = test_entities if ner else test_correct
    task = ["--task", TASK] if not labels else [
        "--task", str(labeled_subset(labels)), "--kind", "classification"]
    tag = f"_labels{labels}" if labels else ""
    for name, model in models.items():
        def tune(lr: str | None, seed: int) -> Path:  # None: the lr `finetune` carries
            out = RUNS / (f"{PREFIX[TASK]}{tag}_{model.name}{f'_lr{lr}' if lr else ''}"
                          f"_seed{seed}")
            seconds[f"finetune_{out.name}"] = run(
                ["edgebert", "finetune", "--model", str(model), *task, *finetune,
                 *(["--lr", lr] if lr else []), "--seed", str(seed), "--out", str(out)])
            return out

        lr = None
        if lrs:
            dev = {x: json.loads((tune(x, seeds[0]) / "metrics.json").read_text())["dev"]
                   [metric] for x in lrs}
            lr = max(lrs, key=lambda x: dev[x])
            search[name] = {f"dev_{metric}": dev, "lr": lr}
        correct[name] = [outcomes(tune(lr, seed)) for seed in seeds]
    first, second = models
    cmd = ["edgebert", "finetune", "--model", "MODEL",
           *(["--task", f"{TASK} with {labels} training labels (a seeded sample), "
                        f"as a local directory", "--kind", "classification"]
             if labels else task), *finetune,
           *(["--lr", "LR"] if lrs else []), "--seed", "SEED"]
    return {"arms": {name: (entity_arm if ner else arm)(c) | search.get(name, {})
                     for name, c in correct.items()},
            "gain": (entity_gain_with_se if ner else gain_with_se)(correct[first],
                                                                   correct[second]),
            "finetune_command": shlex.join(cmd), "seeds": seeds}


def pretrain_summary(pre: Path, cmd: list[str]) -> dict:
    m = json.loads((pre / "metrics.json").read_text())
    max_length = json.loads((pre / "stage.json").read_text())["config"]["max_length"]
    return {"before": m["before"], "heldout": m["heldout"], "examples": m["examples"],
            "steps": m["train"]["steps"],
            # examples seen x their mean real length: padding is not counted
            "tokens_seen": round(m["train"]["steps"] * m["train"]["tokens_per_step"]
                                 / max_length * m["examples"]["mean_tokens"]),
            "train_seconds": round(m["train"]["seconds"], 1), "curve": m["train"]["history"],
            "command": shlex.join(cmd)}


def task_corpus(out: Path, extra: list[str]) -> Path:
    """The task's training texts as a pretraining corpus: documents of 10 texts (so whole
    documents can be held out), then any extra corpus files as they are. Never dev or
    test texts: those are what the fine-tuned model is scored on."""
    from edgebert.config import TaskConfig
    from edgebert.data.tasks import load_task

    out.mkdir(parents=True, exist_ok=True)
    texts = [" ".join([ex.context, *ex.choices]) if hasattr(ex, "choices")
             else " ".join(ex.tokens) if hasattr(ex, "tokens") else ex.text
             for ex in load_task(TaskConfig(name=TASK)).splits["train"]]
    texts = [t.replace("\n", " ") for t in texts]
    docs = ["\n".join(texts[i:i + 10]) for i in range(0, len(texts), 10)]
    (out / "task_train.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    for i, f in enumerate(extra):
        (out / f"extra{i}.txt").write_text(Path(f).read_text(encoding="utf-8"), encoding="utf-8")
    return out


def continued(args, seconds: dict) -> dict:
    tag = "" if TASK == "rotten-tomatoes" else f"_{PREFIX[TASK]}"  # RT's runs came first
    corpus = task_corpus(RUNS / f"task_corpus{tag}", args.corpus)
    common = ["--no-nsp", "--corpus", str(corpus), "--group-by-length", "--max-length", "128",
              "--batch-size", "32", "--heldout", "0.05", "--eval-every", "50"]
    # --continued-steps: a large --corpus is sampled, not read whole; the same budget caps
    # the head pass (2 cores, batch 32 x ~106 tokens: ~28 head-only steps a minute, ~15
    # full steps)
    budget = ["--max-steps", str(args.continued_steps)] if args.continued_steps else []
    init, heads = "minilm-l6", None
    if args.head_epochs:  # the packaged encoder has no MLM head: teach a fresh one first
        init = str(RUNS / f"minilm_heads_{args.head_epochs:g}{tag}")
        head_cmd = ["edgebert", "pretrain", "--init", "minilm-l6", "--freeze-encoder", *common,
                    "--epochs", str(args.head_epochs), *budget, "--lr", "1e-3",
                    "--warmup", "0.06", "--out", init]
        seconds["pretrain_heads"] = run(head_cmd)
        heads = pretrain_summary(Path(init), head_cmd)
    pre = RUNS / (f"minilm_continued_{args.continued_epochs:g}"
                  + (f"_after_heads_{args.head_epochs:g}" if args.head_epochs else "") + tag)
    cmd = ["edgebert", "pretrain", "--init", init, *common, "--epochs",
           str(args.continued_epochs), *budget, "--lr", "1e-4", "--warmup", "0.06",
           "--out", str(pre)]
    seconds["pretrain_continued"] = run(cmd)
    return {"what": f"MiniLM-L6 MLM pretraining continued on {TASK}'s training texts"
                    + (f" and {len(args.corpus)} more file(s)" if args.corpus else "")
                    + (", its fresh MLM head trained alone first" if heads else ""),
            "heads_pretrain": heads, "pretrain": pretrain_summary(pre, cmd),
            "downstream": compare({"continued": pre, "packaged": Path("minilm-l6")},
                                  TEACHER_FINETUNE + (FEW_LABELS if args.labels else []),
                                  args.continued_seeds, seconds, labels=args.labels)}


def scratch(args, seconds: dict) -> dict:
    corpus, tok = RUNS / "corpus", RUNS / "tok"
    pre = RUNS / f"tiny_pretrained_{args.scratch_steps}"
    seconds["corpus"] = run(["edgebert", "corpus", "build", "--out", str(corpus)])
    if not (tok / "tokenizer.json").exists():
        seconds["tokenizer"] = run(["edgebert", "tokenizer", "train", "--corpus", str(corpus),
                                    "--vocab-size", "8000", "--out", str(tok)])
    cmd = ["edgebert", "pretrain", "--corpus", str(corpus), "--tokenizer", str(tok),
           "--config", "tiny", "--max-length", "128", "--batch-size", "32", "--group-by-length",
           "--max-steps", str(args.scratch_steps), "--lr", "1e-3", "--warmup", "0.05",
           "--eval-every", str(max(50, args.scratch_steps // 10)), "--out", str(pre)]
    seconds["pretrain_scratch"] = run(cmd)
    counts = {p.stem: sum(1 for line in open(p, encoding="utf-8") if line.strip())
              for p in sorted(corpus.glob("*.txt"))}
    return {"what": "tiny BERT (2 x 128) MLM + NSP pretrained on the Debian corpus",
            "corpus_sentences": counts, "pretrain": pretrain_summary(pre, cmd),
            "downstream": compare({"pretrained": pre, "random": random_init(tok, RUNS / "random")},
                                  ["--epochs", TINY_EPOCHS[TASK], *TINY_FINETUNE],
                                  args.scratch_seeds, seconds, TINY_LRS)}


def main() -> None:
    global TASK
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", choices=["both", "continued", "scratch"], default="both")
    ap.add_argument("--task", choices=sorted(PREFIX), default=TASK,
                    help="the task both demonstrations are fine-tuned and scored on")
    ap.add_argument("--corpus", nargs="*", default=[],
                    help="more unlabeled in-domain text files for the continued demo")
    ap.add_argument("--head-epochs", type=float, default=3.0,
                    help="passes training the fresh MLM head alone first (0: none)")
    ap.add_argument("--continued-epochs", type=float, default=2.0)
    ap.add_argument("--continued-steps", type=int, default=0,
                    help="cap each continued pass at this many steps (0: whole epochs)")
    ap.add_argument("--continued-seeds", type=int, nargs="+", default=[13])
    ap.add_argument("--labels", type=int, default=0,
                    help="continued demo: fine-tune both arms on only this many labeled "
                         "training examples (a seeded sample); the pretraining still reads "
                         "every training text (0: all labeled)")
    ap.add_argument("--scratch-steps", type=int, default=12000)
    ap.add_argument("--scratch-seeds", type=int, nargs="+", default=[13, 14, 15])
    args = ap.parse_args()
    TASK = args.task
    for name, demo in (("continued", continued), ("scratch", scratch)):
        if args.demo not in ("both", name):
            continue
        seconds = {}
        case = name if TASK == "rotten-tomatoes" else f"{name}_{TASK}"
        case += f"_labels{args.labels}" if args.labels and name == "continued" else ""
        r = demo(args, seconds) | {"task": TASK,
                                   "seconds": {k: round(v, 1) for k, v in seconds.items()}}
        d, h = r["downstream"], r["pretrain"]["heldout"]
        arms = ", ".join(f"{k} {v.get('accuracy', v.get('entity_f1')):.2%}"
                         + (f" ± {v['se']:.2%}" if v.get("se") else "")
                         for k, v in d["arms"].items())
        pair = "".join(f", {k.split('_')[0].upper()} {h[k]:.1%}" for k in ("nsp_accuracy",)
                       if k in h)
        print(f"{case}: held-out MLM accuracy {h['mlm_accuracy']:.1%}{pair}; test {arms}; "
              f"gain {d['gain']['gain']:+.2%} ± {d['gain']['se']:.2%} "
              f"({d['gain']['gain_over_se']:.1f} SE)")
        record(SUITE, {case: r}, command=script_command(__file__))  # each demo kept as it ends


if __name__ == "__main__":
    main()
