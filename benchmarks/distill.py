"""Distil the Rotten Tomatoes teacher into 3- and 2-layer students and measure them.

    python benchmarks/distill.py     # -> store rows, suite distill (a case per student)
    python benchmarks/distill.py distilled_3l    # only the students named (and the trim)

Needs the teacher from `python benchmarks/teacher.py rt` (reused when present).
Runs the real CLI for every student, a 3-layer control fine-tuned without
distillation, and vocabulary trimming of the 3-layer student; then times the
teacher and the students in PyTorch FP32 (batch 1, sequence 128, 2 threads),
each in its own process, alternated in one run.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from common import record, run, RUNS, script_command, usage

HERE = Path(__file__).resolve().parent
SUITE = "distill"
TEACHER = RUNS / "teacher_rt"
COMMON = ["--epochs", "4", "--batch-size", "32", "--lr", "1e-4", "--eval-every", "100",
          "--patience", "5"]
STUDENTS = {
    "distilled_3l": ["--layers", "0,2,4", "--kl", "1", "--ce", "0.5", "--temperature", "2"],
    "distilled_2l": ["--layers", "0,3", "--kl", "1", "--ce", "0.5", "--temperature", "2"],
    # the 2-layer student overfits (dev peaks early): soft targets on one masked/dropped-word
    # copy of each training text (Tang et al. 2019) give it more of the teacher to learn from
    "distilled_2l_augmented": ["--layers", "0,3", "--kl", "1", "--ce", "0.5", "--temperature",
                               "2", "--augment", "1", "--epochs", "1"],
    # keep the teacher's top layer (its task-tuned features) and align hidden states (cosine)
    "distilled_2l_top_cos": ["--layers", "0,5", "--kl", "1", "--ce", "0.5", "--temperature", "2",
                             "--cos", "1", "--group-by-length"],
    # a teacher assistant (Mirzadeh et al. 2020): the 2-layer student learns from the
    # 3-layer one (itself distilled, layers 0,2,4 of the teacher) and starts from its
    # layers 0 and 2, i.e. teacher layers 0 and 4; the smaller gap is easier to close
    "distilled_2l_assistant": ["--teacher", "student_distilled_3l", "--layers", "0,2", "--kl",
                               "1", "--ce", "0.5", "--temperature", "2", "--group-by-length"],
    # TinyBERT's two stages: general distillation of teacher layers 0 and 3 on unlabeled text
    # (hidden states of the packaged MiniLM; see general_student()), then task distillation
    # starting from that encoder
    "distilled_2l_general_then_task": ["--student", "general_2l", "--kl", "1", "--ce", "0.5",
                                       "--temperature", "2", "--group-by-length"],
    "control_3l_no_distillation": ["--layers", "0,2,4", "--kl", "0", "--ce", "1"],
}
GENERAL = ["--teacher", "minilm-l6", "--layers", "0,3", "--max-length", "64", "--epochs", "2",
           "--batch-size", "32", "--lr", "2e-4", "--group-by-length"]


def general_corpus(path: Path) -> Path:
    """Unlabeled text for general distillation, never dev or test: the task's training
    texts, the 1,097 plot summaries beside the reviews in the same packaged file, and
    20,000 WordNet glosses (`edgebert corpus build`), shuffled with a fixed seed."""
    import bz2
    import csv
    import io
    import random

    from edgebert.config import TaskConfig
    from edgebert.data.tasks import load_task
    from edgebert.sources import resolve_data

    if path.exists():
        return path
    train = [ex.text for ex in load_task(TaskConfig("rotten-tomatoes")).splits["train"]]
    raw = next(resolve_data("rotten-tomatoes").rglob("*.csv.bz2"))
    with io.TextIOWrapper(bz2.open(raw), encoding="utf-8") as fh:
        plots = [r["text"] for r in csv.DictReader(fh) if r["category"] == "plot"]
    words = path.parent / "corpus_wordnet"
    run(["edgebert", "corpus", "build", "--packages", "wordnet-base", "--out", str(words)])
    glosses = [line.strip() for line in open(words / "wordnet-base.txt") if line.strip()]
    random.Random(0).shuffle(glosses)
    lines = train + plots + glosses[:20000]
    random.Random(1).shuffle(lines)
    path.write_text("\n".join(t.replace("\n", " ") for t in lines) + "\n")
    return path


def general_student() -> tuple[Path, str]:
    out = RUNS / "general_2l"
    cmd = ["edgebert", "distill", *GENERAL, "--corpus",
           str(general_corpus(RUNS / "general_corpus.txt")), "--out", str(out)]
    run(cmd)
    return out, shlex.join(cmd)


def main(only: list[str]) -> None:
    unknown = sorted(set(only) - set(STUDENTS))
    if unknown:
        raise SystemExit(f"unknown students {unknown}; choose among {', '.join(STUDENTS)}")
    if not (TEACHER / "metrics.json").exists():
        run([sys.executable, str(HERE / "teacher.py"), "rt"])
    teacher = json.loads((TEACHER / "metrics.json").read_text())
    rows, commands = {}, {}
    for name, args in STUDENTS.items():
        if only and name not in only:
            continue
        out = RUNS / f"student_{name}"
        if args[0] == "--teacher":  # another student of this run teaches (already trained)
            args = ["--teacher", str(RUNS / args[1]), *args[2:]]
        elif args[0] == "--student":  # starts from the general-distillation encoder
            general, commands[f"{name}_general_stage"] = general_student()
            args = ["--teacher", str(TEACHER), "--student", str(general), *args[2:]]
        else:
            args = ["--teacher", str(TEACHER), *args]
        cmd = ["edgebert", "distill", *COMMON, *args, "--out", str(out)]
        commands[name] = shlex.join(cmd)
        run(cmd)
        m = json.loads((out / "metrics.json").read_text())
        stage = json.loads((out / "stage.json").read_text())
        # a student that started from the general-distillation encoder: that one's layers
        layers = stage["layers"] or json.loads(
            (Path(stage["config"]["student"]) / "stage.json").read_text())["layers"]
        rows[name] = {"layers": layers, "params": m["params"],
                      "size_mb": round(m["size_mb"], 2), "test_accuracy": m["test"]["accuracy"],
                      "dev_accuracy": m["dev"]["accuracy"],
                      # over the fine-tuned teacher, whichever model taught this student
                      "retention": m["test"]["accuracy"] / teacher["test"]["accuracy"],
                      "train_seconds": round(m["train"]["seconds"], 1),
                      "command": commands[name]}
        if f"{name}_general_stage" in commands:
            rows[name]["notes"] = {"general_stage_command": commands[f"{name}_general_stage"]}

    trimmed = RUNS / "student_distilled_3l_trimmed"
    trim_cmd = ["edgebert", "trim-vocab", "--model", str(RUNS / "student_distilled_3l"),
                "--out", str(trimmed)]
    run(trim_cmd)
    t = json.loads((trimmed / "metrics.json").read_text())
    trim = {"vocab_before": t["vocab_before"], "vocab_after": t["vocab_after"],
            "size_mb_before": round(t["size_mb_before"], 2), "size_mb_after": round(t["size_mb"], 2),
            "params_after": t["params"],
            "test_accuracy_before": t["before"]["test"]["accuracy"],
            "test_accuracy_after": t["test"]["accuracy"],
            "max_abs_diff_on_kept_text": t["max_abs_diff_kept_text"],
            "command": shlex.join(trim_cmd)}

    from edgebert.bench.latency import interleaved

    paths = {"teacher": TEACHER} | {n: RUNS / f"student_{n}" for n in rows}
    lat = interleaved({k: str(v) for k, v in paths.items()}, rounds=6, runs=25)
    for name, row in rows.items():
        row["p50_ms"] = round(lat[name]["p50_ms"], 2)
        row["p90_ms"] = round(lat[name]["p90_ms"], 2)
        row["speedup"] = round(lat["teacher"]["p50_ms"] / lat[name]["p50_ms"], 2)
    cases = {"teacher": {"test_accuracy": teacher["test"]["accuracy"],
                         "params": teacher["params"], "size_mb": round(teacher["size_mb"], 2),
                         "p50_ms": round(lat["teacher"]["p50_ms"], 2),
                         "p90_ms": round(lat["teacher"]["p90_ms"], 2)},
             **rows, "vocab_trim_3l": trim}
    print(json.dumps(cases, indent=2))
    record(SUITE, cases, threads=2, command=script_command(__file__, only), notes={
        "latency": "PyTorch FP32, batch 1, sequence 128, 2 threads; each model in its own "
                   "process, 6 rounds (order rotated) x 25 runs after 10 warm-up"})


if __name__ == "__main__":
    usage(__doc__)
    main(sys.argv[1:])
