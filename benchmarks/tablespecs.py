"""The results tables of docs/benchmarks.md that are lists of measurements (what, result,
command), declared as data over the store (tablefmt's templates):
`python benchmarks/tables.py` renders each between its markers.

A pick names a commit where the table cites one run among several of the same case (the
transformers 4.57 and 5.24 runs of one script, a result its suite later measured again).
"""

from __future__ import annotations

import math
import re

import store
from tablefmt import Pick, Table, line

T5 = "5.24.0"
"""The transformers release of the "On transformers 5" runs."""


def planned_steps(rows: dict[str, store.Row]) -> dict:
    """A training run's steps without early stopping: epochs x batches of its command."""
    r = rows["t"]
    epochs = float(re.search(r"--epochs (\S+)", r.command).group(1))
    batch = int(re.search(r"--batch-size (\d+)", r.command).group(1))
    return {"planned": int(epochs * math.ceil(r.metrics["examples"]["train"] / batch))}


def gate_neighbour(rows: dict[str, store.Row]) -> dict:
    """The interleaved runs' median ratios with a neighbour (low, high), and the alarms
    every picked calibration raised."""
    ratios = [rows[n].metrics["median_ratio"] for n in ("first", "second")]
    return {"low": min(ratios), "high": max(ratios),
            "fired": sum(r.metrics["fired"] for r in rows.values())}


def distill(case: str) -> Pick:
    return Pick("distill", case, commit="f47d2ee")  # the 4.57 run (5.24's is newer)


def gate(case: str) -> Pick:
    return Pick("gate", case)


STAGES = Table(["what", "result", "command"], [
    line("MiniLM-L6 teacher, Rotten Tomatoes",
         "{t.test_accuracy!p:.1f} % test accuracy (dev {t.dev_accuracy!p:.1f} %), best at step "
         "{t.best_step}, early stop at {t.steps} of {planned}", "`python benchmarks/teacher.py rt`",
         t=Pick("teacher", "rotten-tomatoes", transformers="4.57.6", machine="epyc-avx2"),
         derive=planned_steps),
    line("MiniLM-L6 teacher, WNUT NER",
         "test entity F1 {t.test_entity_f1:.3f} (dev {t.dev_entity_f1:.3f}; "
         "P {t.test_entity_precision:.3f}, R {t.test_entity_recall:.3f})",
         "`python benchmarks/teacher.py wnut`", t=Pick("teacher", "wnut-ner")),
    line("3-layer distilled student",
         "{d.test_accuracy!p:.1f} % ({d.retention!p:.1f} % of the teacher), {d.speedup:.1f}x "
         "faster in PyTorch FP32 ({d.p50_ms:.1f} vs {t.teacher_p50_ms:.1f} ms)",
         "`python benchmarks/distill.py`", d=distill("distilled_3l"), t=distill("teacher")),
    line("the same 3 layers fine-tuned without distillation",
         "{c.test_accuracy!p:.1f} % ({c.retention!p:.1f} %): distillation buys {gain!p:+.1f} "
         "points", "`python benchmarks/distill.py`",
         c=distill("control_3l_no_distillation"), d=distill("distilled_3l"),
         derive=lambda r: {"gain": r["d"].metrics["test_accuracy"]
                           - r["c"].metrics["test_accuracy"]}),
    line("2-layer student: general distillation on unlabeled text, then task distillation",
         "{g.test_accuracy!p:.1f} % ({g.retention!p:.1f} % of the teacher), {g.speedup:.1f}x "
         "faster; task distillation alone {t.test_accuracy!p:.1f} %",
         "`python benchmarks/distill.py`", g=distill("distilled_2l_general_then_task"),
         t=distill("distilled_2l")),
    line("vocabulary trimmed to the training texts (3-layer)",
         "{v.vocab_before:,} → {v.vocab_after:,} tokens, {v.size_mb_before:.1f} → "
         "{v.size_mb_after:.1f} MB, test {v.test_accuracy_before!p:.1f} → "
         "{v.test_accuracy_after!p:.1f} %", "`python benchmarks/distill.py`",
         v=distill("vocab_trim_3l")),
    line("structured pruning, 50 % heads + 50 % FFN, distillation recovery",
         "{s.test_accuracy!p:.1f} % ({s.retention!p:.1f} % of its parent), FP32 ONNX "
         "{s.speedup:.1f}x faster", "`python benchmarks/prune.py`",
         s=Pick("prune", "structured_heads50_ffn50")),
    line("unstructured 80 % magnitude sparsity, distillation recovery",
         "{u.test_accuracy!p:.1f} % ({u.retention!p:.1f} %), no speed on ONNX Runtime "
         "({u.speedup:.2f}x), smaller under gzip only", "`python benchmarks/prune.py`",
         u=Pick("prune", "unstructured_sparsity80")),
    line("INT8 of the 3-layer student, ONNX Runtime dynamic (x86-avx2)",
         "{a.delta_vs_fp32:+.2f} pt vs FP32 ONNX, top-1 agreement {a.top1_agreement!p:.1f} %, "
         "{a.size_mb:.1f} MB ({a.smaller_than_fp32:.1f}x smaller), {a.speedup:.2f}x to "
         "{b.speedup:.2f}x faster than the FP32 export; static QDQ {s.speedup:.2f}x",
         "`python benchmarks/int8.py`", a=Pick("int8", "dynamic_x86-avx2", commit="6cab1b2"),
         b=Pick("int8", "dynamic_x86-avx2", commit="82fdefb"),
         s=Pick("int8", "static_x86-avx2_minmax", commit="6cab1b2")),
    line("Neural Compressor, `quantize --engine inc` (PT2E, autotune on the dev metric)",
         "{i.delta_vs_fp32_test:+.2f} pt, top-1 agreement {i.top1_agreement!p:.1f} %; "
         "{i.p50_ms:.1f} ms under `torch.compile` vs {p.p50_ms:.1f} ms FP32 PyTorch and "
         "{o.p50_ms:.1f} ms ONNX Runtime INT8", "`python benchmarks/int8_inc.py`",
         i=Pick("int8_inc", "inc_int8"), p=Pick("int8_inc", "fp32_pytorch"),
         o=Pick("int8_inc", "ort_int8")),
    line("ALBERT (6 repetitions, MiniLM's width), INT8",
         "top-1 agreement with FP32 {a.parity_vs_fp32.top1_agreement!p:.1f} %, "
         "{a.size_mb.int8:.1f} vs {a.size_mb.fp32_onnx:.1f} MB, "
         "{a.speedup_int8_over_fp32_onnx:.2f}x over the FP32 export",
         "`python benchmarks/albert_int8.py`", a=Pick("albert_int8", "albert int8")),
    line("factorized word embeddings (rank {f.rank}) in the default chain's student",
         "INT8 {f.factorized.int8.size_mb:.2f} vs {f.default.int8.size_mb:.2f} MB, test "
         "{f.int8_delta.test_points:+.2f} pt (the chain leaves the 1-point budget)",
         "`python benchmarks/factorized_embeddings.py {f.rank}`",
         f=Pick("factorized_embeddings", "rank 128")),
    line("one file with the tokenizer inside",
         "over all {t.dev_examples:,} dev texts {t.token_id_mismatches} token-id and "
         "{t.prediction_mismatches} prediction mismatches; {t.size_mb.onnx_with_tokenizer:.2f} "
         "vs {t.size_mb.onnx_without_tokenizer:.2f} MB; string to label "
         "{t.latency.p50_ms.one_file:.2f} vs {t.latency.p50_ms.python_tokenizer:.2f} ms with "
         "Python `tokenizers`; aarch64 under qemu {same}/{t.arm64_emulation.examples} labels "
         "equal", "`python benchmarks/text_in_graph.py runs/default/int8/x86-avx2`",
         t=Pick("text_in_graph", "one-file model"),
         derive=lambda r: {"same": round(r["t"].metrics["arm64_emulation"]["examples"]
                                         * r["t"].metrics["arm64_emulation"]["same_labels"])}),
    line("`wordnet-mc` (multiple choice, 4 glosses, chance 25 %), default recipe",
         "teacher {m.teacher_accuracy!p:.1f} %; 3-layer student {m.rows.student.accuracy!p:.1f} "
         "%, INT8 {m.rows.int8/x86-avx2.accuracy!p:.1f} %, "
         "{m.rows.int8/x86-avx2.speedup_vs_teacher:.1f}x: no artifact within 1 point; the "
         "teacher's INT8 alone {t.accuracy!p:.1f} % ({t.delta_points:+.1f}), {t.speedup:.1f}x, "
         "recommended",
         "`python benchmarks/multiple_choice.py runs/wordnet-mc runs/wordnet-mc-int8`",
         m=Pick("multiple_choice", "wordnet-mc/default recipe"),
         t=Pick("multiple_choice", "wordnet-mc/teacher int8 recipe")),
    line("CI gate: Hodges-Lehmann ratio over per-process lower quartiles",
         "{g.false_alarms} false alarms in {g.aa_trials} A/A trials; a "
         "{g.by_size.10 vs 11.median_slowdown!p:.1f} % slowdown caught in "
         "{g.by_size.10 vs 11.detected} of {g.by_size.10 vs 11.trials} at `--max-slowdown 5%`; "
         "a {g.by_size.20 vs 21.median_slowdown!p:.1f} % slowdown in "
         "{g.by_size.20 vs 21.detected} of {g.by_size.20 vs 21.trials} at 0",
         "`python benchmarks/gate_calibration.py`", g=gate("hodges-lehmann lower quartiles")),
    line("CI gate: both models in one interleaved run against two separate runs, a busy "
         "neighbour for half of each A/A trial",
         "interleaved: median ratio {low:.2f}-{high:.2f}; separate: {s2.median_ratio:.2f} (up "
         "to {s2.max_ratio:.2f}) with the neighbour on the candidate's run, "
         "{s1.median_ratio:.2f} on the baseline's; quiet: {qi.median_ratio:.2f} and "
         "{qs.median_ratio:.2f}; {fired} false alarms in {first.trials} trials each",
         "`python benchmarks/gate_calibration.py --neighbour first\\|second`",
         first=gate("aa-interleaved-neighbour-first-half"),
         second=gate("aa-interleaved-neighbour-second-half"),
         s1=gate("aa-separate-neighbour-first-half"),
         s2=gate("aa-separate-neighbour-second-half"),
         qi=gate("aa-interleaved"), qs=gate("aa-separate"), derive=gate_neighbour),
    line("CI gate, earlier designs",
         "bootstrap of the median over per-process quartiles: {b.detected} of {b.ab_trials}; "
         "per-process medians: {m.detected} of {m.ab_trials}",
         "superseded; [the defaults](defaults.md#measuring) say what they taught",
         b=gate("bootstrap median over lower quartiles"), m=gate("per-process medians")),
])
"""docs/benchmarks.md, "Single stages"."""


def gain(arm: str) -> str:
    """A pretraining demo's arm: `accuracy ± SE` in percent."""
    return f"{{{arm}.accuracy!p:.2f}} ± {{{arm}.se!p:.2f}} %"


def pretrain(case: str) -> Pick:
    return Pick("pretrain", case)


PRETRAINING = Table(["what", "result", "command"], [
    line("a `tiny` BERT (2 × 128) from scratch, MLM + NSP on the Debian corpus, its own "
         "8,000-piece vocabulary, {s.pretrain.steps:,} steps on the CPU",
         "held-out MLM accuracy {s.pretrain.heldout.mlm_accuracy!p:.1f} %, **NSP "
         "{s.pretrain.heldout.nsp_accuracy!p:.1f} %**; Rotten Tomatoes "
         + gain("s.downstream.arms.pretrained") + " against " + gain("s.downstream.arms.random")
         + " from random weights (not told from noise)",
         "`python benchmarks/pretrain_cpu.py --demo scratch --scratch-steps "
         "{s.pretrain.steps}`", s=pretrain("scratch")),
    line("the same model on `wordnet-mc` (pick a word's WordNet gloss among 4)",
         "**" + gain("w.downstream.arms.pretrained") + " against "
         + gain("w.downstream.arms.random") + "** from random weights (chance 25 %): "
         "{w.downstream.gain.gain!p:+.2f} ± {w.downstream.gain.se!p:.2f} points "
         "({w.downstream.gain.gain_over_se:.1f} SE)",
         "`python benchmarks/pretrain_cpu.py --task wordnet-mc --demo scratch --scratch-steps "
         "{w.pretrain.steps}`", w=pretrain("scratch_wordnet-mc")),
    line("continued MLM pretraining of MiniLM on Rotten Tomatoes' training texts",
         "the teacher {c.downstream.gain.gain!p:+.2f} ± {c.downstream.gain.se!p:.2f} points "
         "({c.downstream.gain.gain_over_se:.1f} SE); with 500 labels "
         "{l.downstream.gain.gain!p:+.2f} ± {l.downstream.gain.se!p:.2f}; three times the "
         "pretraining {x.downstream.gain.gain!p:+.2f} ± {x.downstream.gain.se!p:.2f}",
         "`python benchmarks/pretrain_cpu.py --demo continued`", c=pretrain("continued"),
         l=pretrain("continued_labels500"), x=pretrain("continued_6_passes")),
    line("continued pretraining on WNUT's tweets, 20 passes",
         "entity F1 {n.downstream.gain.gain!p:+.2f} ± {n.downstream.gain.se!p:.2f}",
         "`python benchmarks/pretrain_cpu.py --task wnut-ner --demo continued --head-epochs 10 "
         "--continued-epochs 20`", n=pretrain("continued_wnut-ner")),
])
"""docs/benchmarks.md, "Pretraining"."""

TRANSFORMERS5 = Table(["what", "transformers 5.24", "4.57 (above)", "command"], [
    line("MiniLM-L6 teacher, Rotten Tomatoes",
         "{n.test_accuracy!p:.2f} % test (dev {n.dev_accuracy!p:.2f} %), early stop at step "
         "{n.steps} (best {n.best_step})",
         "{o.test_accuracy!p:.2f} % (dev {o.dev_accuracy!p:.2f} %), {o.steps} steps (best "
         "{o.best_step})", "`python benchmarks/teacher.py rt`",
         n=Pick("teacher", "rotten-tomatoes", transformers=T5),
         o=Pick("teacher", "rotten-tomatoes", commit="eea832d")),
    line("3-layer distilled student",
         "{n.test_accuracy!p:.2f} % ({n.retention!p:.1f} % of its teacher), {n.speedup:.1f}x "
         "faster than the teacher in PyTorch FP32 ({n.p50_ms:.1f} vs {nt.teacher_p50_ms:.1f} ms)",
         "{o.test_accuracy!p:.2f} % ({o.retention!p:.1f} %), {o.speedup:.1f}x ({o.p50_ms:.1f} "
         "vs {ot.teacher_p50_ms:.1f} ms, an earlier machine)",
         "`python benchmarks/distill.py distilled_3l`",
         n=Pick("distill", "distilled_3l", transformers=T5),
         nt=Pick("distill", "teacher", transformers=T5),
         o=distill("distilled_3l"), ot=distill("teacher")),
    line("its vocabulary trimmed",
         "{n.vocab_before:,} -> {n.vocab_after:,} tokens, {n.size_mb_before:.1f} -> "
         "{n.size_mb_after:.1f} MB, test {n.test_accuracy_before!p:.1f} -> "
         "{n.test_accuracy_after!p:.1f} %",
         "the same tokens and sizes, {o.test_accuracy_before!p:.1f} -> "
         "{o.test_accuracy_after!p:.1f} %", "same",
         n=Pick("distill", "vocab_trim_3l", transformers=T5), o=distill("vocab_trim_3l")),
    line("INT8 of that student (ORT dynamic, x86-avx2 / x86-vnni presets; AVX2 CPU)",
         "{na.test_accuracy!p:.2f} % / {nv.test_accuracy!p:.2f} % ({na.delta_vs_fp32:+.2f} / "
         "{nv.delta_vs_fp32:+.2f} pt vs FP32 ONNX), {na.size_mb:.1f} MB; {na.speedup:.2f}x / "
         "{nv.speedup:.2f}x over the FP32 export ({na.speedup_over_fp32_tuned:.2f}x / "
         "{nv.speedup_over_fp32_tuned:.2f}x over the same fusions in FP32), on a slower "
         "machine (FP32 export {nf.p50_ms:.1f} ms)",
         "{oa.test_accuracy!p:.2f} % / {ov.test_accuracy!p:.2f} %, {oa.speedup:.2f}x / "
         "{ov.speedup:.2f}x ({of.p50_ms:.1f} ms)", "`python benchmarks/int8.py`",
         na=Pick("int8", "dynamic_x86-avx2", transformers=T5),
         nv=Pick("int8", "dynamic_x86-vnni", transformers=T5),
         nf=Pick("int8", "fp32_onnx", transformers=T5),
         oa=Pick("int8", "dynamic_x86-avx2", commit="82fdefb"),
         ov=Pick("int8", "dynamic_x86-vnni", commit="82fdefb"),
         of=Pick("int8", "fp32_onnx", commit="82fdefb")),
    line("PyTorch FP32, the same teacher under both versions, alternated processes",
         "{a.5.24.0 median_ms:.1f} and {b.5.24.0 median_ms:.1f} ms",
         "{a.4.57.6 median_ms:.1f} and {b.4.57.6 median_ms:.1f} ms: 5.24 is {a.ratio:.2f}x and "
         "{b.ratio:.2f}x slower in two runs",
         "`python benchmarks/stack_latency.py MODEL .venv/bin/python .venv-newest/bin/python`",
         a=Pick("stack_latency", "teacher pytorch fp32", nth=0),
         b=Pick("stack_latency", "teacher pytorch fp32", nth=1)),
])
"""docs/benchmarks.md, "On transformers 5": each 5.24 row beside its 4.57 run."""

SPECS = {"stages": STAGES, "pretraining": PRETRAINING, "transformers5": TRANSFORMERS5}
"""Each declared table by its marker name."""
