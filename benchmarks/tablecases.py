"""The results tables whose lines are the cases of one suite: docs/benchmarks.md's runtimes
and GPU tables, docs/defaults.md's word tables (`python benchmarks/tables.py`).
"""

from __future__ import annotations

import store
from tablefmt import Line, Pick, Table, line, markdown, newest_run

RUNTIME = {"pytorch": "PyTorch", "onnx": "ONNX Runtime", "ort": "ONNX Runtime",
           "openvino": "OpenVINO", "torchscript": "TorchScript"}
RUNTIMES_SHOWN = {"teacher": "", "int8/x86-vnni": "", "int8/openvino-int8": " (NNCF)",
                  "export/openvino": "", "export/ort": "", "export/ort-text": ", tokenizer inside"}
"""The artifacts of docs/benchmarks.md's "Runtimes on one CPU", each with the words after
its runtime and precision."""


def runtimes(path=store.STORE, **where) -> str:
    """Every shown artifact of the newest `runtimes` run: the one recommended on the texts
    is the fastest on them within a point of the teacher."""
    rows = {r.case: r.metrics for r in newest_run("runtimes", path=path, **where)}
    within = [c for c in RUNTIMES_SHOWN if c != "teacher"
              and rows[c]["delta_vs_teacher"] >= -1.0]
    best = min(within, key=lambda c: rows[c]["texts_p50_ms"])
    out = [["artifact", "runtime, precision", "test accuracy (Δ)", "size", "p50, 128 tokens",
            "p50, texts"]]
    for case, extra in RUNTIMES_SHOWN.items():
        m = rows[case]
        precision = "INT8" if m["precision"] == "int8" else m["precision"]
        delta = (f" ({m['delta_vs_teacher']:+.2f} ± {m['delta_se']:.2f})"
                 if m["delta_se"] is not None else "")
        out.append([(f"`{case}`" if "/" in case else case)
                    + (" (recommended on texts)" if case == best else ""),
                    f"{RUNTIME[m['format']]} {precision}{extra}",
                    f"{100 * m['accuracy']:.2f} %{delta}", f"{m['size_mb']:.2f} MB",
                    f"{m['p50_ms']:.2f} ms", f"{m['texts_p50_ms']:.2f} ms"])
    return markdown(out)


def gpu_line(label: str, case: str, mfu: str = "{r.mfu!p:.1f} %",
             last: str = "{r.mfu_vs_measured_matmul!p:.1f} %") -> Line:
    return line(label, "{r.step_ms:.1f} ms", "{r.tokens_per_s!k:.0f} k",
                "{r.achieved_tflops:.0f}", mfu, last, r=Pick("gpu", case))


GPU = Table(["MLM + NSP step", "step", "tokens/s", "model TFLOP/s",
             "MFU ({d.nominal_dense_bf16_tflops:.0f} peak)",
             "vs measured matmul ({d.matmul_tflops:.0f})"], [
    gpu_line("bert-small", "bert-small"),
    gpu_line("bert-base", "bert-base"),
    gpu_line("bert-base, `torch.compile`", "bert-base compiled", mfu="**{r.mfu!p:.1f} %**"),
    gpu_line("bert-base under torchrun, 1 process", "ddp_one_process", mfu="",
             last="DDP {r.overhead!p:+.1f} %"),
], picks={"d": Pick("gpu", "device")})
"""docs/benchmarks.md, the GPU table."""


def word_table(key: str = "", unit: str = " %", bold: bool = False) -> str:
    """`SIZE MB, DEV / TEST` of one word table of an embed4 row: `key` names it (4bit.64,
    2bit), none the model's own 8-bit table."""
    size = f"{{r.{key}.size_mb:.2f}} MB" if key else "{r.size_mb:.2f} MB"
    scores = key or "8bit"
    return ((f"**{size}**" if bold else size)
            + f", {{r.{scores}.dev!p:.2f}} / {{r.{scores}.test!p:.2f}}{unit}")


WORD_TABLE_4BIT = Table(["artifact", "8-bit (or FP32) table", "4-bit table, blocks of 64"], [
    line("Rotten Tomatoes, INT8 x86-avx2", word_table(), word_table("4bit.64", bold=True),
         r=Pick("embed4", "4-bit/rotten-tomatoes/int8/x86-avx2")),
    line("Rotten Tomatoes, INT8 arm64 static, its embedding in FP32", word_table(),
         word_table("4bit.64", bold=True), r=Pick("embed4", "4-bit/rotten-tomatoes/int8/arm64")),
    line("trec-50, INT8 x86-avx2 ({r.4bit.64.rows:,} pieces)", word_table(),
         word_table("4bit.64", bold=True), r=Pick("embed4", "4-bit/trec-50/int8/x86-avx2")),
])
"""docs/defaults.md: 4-bit word tables on finished INT8 artifacts (dev / test)."""

WORD_TABLE_2BIT = Table(["artifact", "8-bit table", "4-bit table", "2-bit table"], [
    line("Rotten Tomatoes, {r.4bit.64.rows:,} pieces (accuracy)", word_table(),
         word_table("4bit.64"), word_table("2bit", bold=True),
         r=Pick("embed4", "2-bit blocks64 pq/q8-rotten-tomatoes")),
    line("sms-spam, spam F1", word_table(unit=""), word_table("4bit.64", unit=""),
         word_table("2bit", unit="", bold=True), r=Pick("embed4", "2-bit blocks64 pq/q8-sms-spam")),
])
"""docs/defaults.md: 8, 4 and 2-bit word tables of the same INT8 models (dev / test)."""

WORD_TABLE_1BIT = Table([
    ("word table (Rotten Tomatoes, FP32 ONNX {e.run's own.fp32_dev!p:.2f} / "
     "{e.run's own.fp32_test!p:.2f} %)"), "INT8 x86-avx2 model", "dev", "test"], [
    line("{e.run's own.table_bits} bits (k-means)", "{e.run's own.size_mb:.2f} MB",
         "{e.run's own.dev!p:.2f} %", "{e.run's own.test!p:.2f} %"),
    line("**1 bit, codebooks tuned, dropout off**", "**{e.1-bit ladder.size_mb:.2f} MB**",
         "**{e.1-bit ladder.dev!p:.2f} %**", "**{e.1-bit ladder.test!p:.2f} %**"),
], picks={"e": Pick("embed1", "rotten-tomatoes")})
"""docs/defaults.md: the run's own 2-bit table against the tuned 1-bit one."""

SPECS = {"gpu": GPU, "word-table-4bit": WORD_TABLE_4BIT, "word-table-2bit": WORD_TABLE_2BIT,
         "word-table-1bit": WORD_TABLE_1BIT}
"""Each declared table by its marker name."""


def learned_prune(path=store.STORE, **where) -> str:
    """docs/guides/learned-pruning.md: each task's newest sweep (benchmarks/learned_prune.py),
    the chain's recommendation first, then each sparsity target's INT8 model for this CPU;
    speed-ups over the FP32 PyTorch teacher in the same bench."""
    latest: dict[tuple[str, str], store.Row] = {}
    for r in store.rows("learned_prune", path=path, **where):
        latest[r.case, store.machine_key(r.machine)] = r  # in order: the newest row wins

    def times(x) -> str:
        return "–" if x is None else f"{x:.1f}x"

    out = [["task", "artifact", "sparsity (target)", "params", "size", "test metric",
            "Δ points", "speed-up, 128 tokens / texts", "stages' wall"]]
    picked = {(r.case.partition("/")[0], key): r.metrics.get("artifact")
              for (case, key), r in latest.items() if case.endswith("/chain")}
    for (case, key), r in latest.items():
        task, _, what = case.partition("/")
        m = r.metrics
        chain = what == "chain"
        if not chain and m.get("artifact") and m["artifact"] == picked.get((task, key)):
            continue  # the chain's own pick (the teacher's INT8): its row says it already
        name = m.get("artifact") or "none within the budget"
        if not m.get("artifact"):
            out.append([f"{task} ({store.machine_key(r.machine)})",
                        f"the chain: {name}" if chain else f"{what}: not made"] + ["–"] * 7)
            continue
        delta = f"{m['delta_vs_teacher']:+.2f}" + (
            f" ± {m['delta_se']:.2f}" if m.get("delta_se") is not None else "")
        sparsity = "–" if chain or "sparsity" not in m else \
            f"{100 * m['sparsity']:.0f} % ({100 * m['sparsity_target']:.0f} %)"
        wall = "–" if m.get("seconds_learned_to_int8") is None \
            else f"{m['seconds_learned_to_int8'] / 60:.0f} min"
        out.append([f"{task} ({store.machine_key(r.machine)})",
                    (f"the chain: `{name}`" if chain else f"`{name}`"),
                    sparsity,
                    f"{m['params'] / 1e6:.1f} M", f"{m['size_mb']:.2f} MB",
                    f"{100 * m['accuracy']:.2f}", delta,
                    f"{times(m.get('speedup_vs_teacher'))} / "
                    f"{times(m.get('texts_speedup_vs_teacher'))}", wall])
    return markdown(out)
