"""The results files the scripts wrote before the store, as store rows.

    python benchmarks/legacy.py FILE... [--source NAME]   # print the rows (JSON Lines)
    python benchmarks/legacy.py FILE... --append          # and add them to the store

Each file's layout is declared once in LAYOUTS: the suite it belongs to, which of its keys
hold one case each, and which hold a case of their own; what is left becomes one more
case. benchmarks/run.py reads the files a script writes through the same table, so the
scripts that still write a results file still land in the store. The commit and date of a
converted committed file are those of the git commit that last wrote it; its machine is
the fingerprint it recorded, else cpu "unknown" with what the file said in `note`.

Raw samples (samples_ms, rounds_ms, a bench run's per-round lists) are left out: rows carry
their medians and spreads, and git keeps the files they came from.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import store
from store import MACHINE_KEYS, Row

TEXT = {"what", "why", "note", "notes", "finding", "reading", "run", "recommended_path",
        "made_by"}
"""Keys whose value is prose or a local path: kept in a row's notes, not its metrics."""
COMMANDS = {"command", "commands"}
RAW = {"samples_ms", "rounds_ms", "bench", "previous", "session", "created", "schema"}
"""Left out: raw samples (rows keep their medians and spreads), figures of an earlier run
that the same file superseded (`previous`), and round numbers."""
ROUND_KEY = re.compile(r"^session_?\d+_?|_session_?\d+$|\s*\(session \d+\)")
CITED = re.compile(r"\s*\([a-z0-9_]+\.json\)")
"""A results file cited in a case's name: "(teacher_wnut.json)"."""
MACHINE_IN_NAME = re.compile(r" \(AVX2\)|AVX2, ")
"""The machine in a case's name ("sms-spam (AVX2)"): the row's machine says it."""
OUT_FILE = re.compile(r" --out [\w.]+\.json")
"""A command's results file name: rows go to the store now."""
ROUND_TEXT = re.compile(r"\b[Ss]essions? \d+(?: (?:to|and) \d+)?(?:'s)?|/s\d\d/")


@dataclass(frozen=True)
class Layout:
    suite: str
    rest: str = "summary"
    """The case of what is left once the split and own keys are taken."""
    prefix: str = ""
    """Put before the split and own keys' case names ("trec-50/--lr 3e-4")."""
    split: tuple[str, ...] = ()
    """Keys whose children are one case each (a dict: by key; a list: by `by`)."""
    own: tuple[str, ...] = ()
    """Keys that are one case each."""
    by: str = ""
    """For a list under a split key: the field that names each case."""
    transpose: tuple[str, ...] = ()
    """Keys laid out {metric: {case: value}} (or one level deeper): turned to cases."""
    rename: dict = field(default_factory=dict)
    """Case names: from a key (or a list item's `by`) to a neutral name."""
    nested: bool = False
    """Split keys hold experiments of variants: cases "experiment/variant"."""
    libraries: dict = field(default_factory=dict)
    """Library versions the file does not record but its documentation states."""


TRANSFORMERS5 = {"transformers": "5.24.0", "huggingface-hub": "2.4.0", "tokenizers": "0.23.3",
                 "torch": "2.13.0"}
"""The stack of results/transformers5/ (docs/benchmarks.md, "On transformers 5")."""

EVERY = ("*",)
"""own=EVERY: every key holding a dict (not taken by `split`) is a case of its own."""
VARIANTS = ("rewritten", "ops_as_run", "max_abs_logit_diff_vs_shipped", "test_accuracy",
            "latency")
LAYOUTS: dict[str, Layout] = {
    "albert_int8.json": Layout("albert_int8", "albert int8"),
    "arm64_1bit.json": Layout("arm64", "1-bit table", "1-bit table", split=("tasks",)),
    "arm64_dynamic.json": Layout("arm64", "static vs dynamic", "static vs dynamic",
                                 split=("tasks",)),
    "binary_threshold.json": Layout("binary_threshold", "rotten-tomatoes", split=("artifacts",)),
    "compress_default.json": Layout("compress_default", "rotten-tomatoes"),
    "distill_rt.json": Layout("distill", "teacher", split=("students",), own=("vocab_trim_3l",)),
    "embed1.json": Layout("embed1", split=("runs",)),
    "embed4.json": Layout("embed4", "4-bit", "4-bit", split=("rows",), by="artifact"),
    "embed2.json": Layout("embed4", "2-bit blocks64 pq", "2-bit blocks64 pq", split=("rows",),
                          by="artifact"),
    "embed2_latency.json": Layout("embed4", "2-bit blocks64 pq latency",
                                  "2-bit blocks64 pq latency", split=("results",), by="artifact"),
    "factorized_embeddings.json": Layout("factorized_embeddings", "rank 128"),
    "gate_calibration.json": Layout("gate", "hodges-lehmann lower quartiles"),
    "gpu.json": Layout("gpu", "device", split=("runs",), by="shape",
                       own=("ddp_one_process", "pretrain_then_finetune", "variants")),
    "int8_inc_rt.json": Layout("int8_inc", "engines", split=("rows",)),
    "int8_rt.json": Layout("int8", split=("variants",), own=("arm64_emulation",)),
    "int8_variants.json": Layout("int8_variants", "setting", transpose=VARIANTS),
    "multiple_choice.json": Layout("multiple_choice", "wordnet-mc teacher", "wordnet-mc",
                                   split=("runs",), by="recommended",
                                   rename={None: "default recipe",
                                           "int8/x86-avx2": "teacher int8 recipe"}),
    "ort_session_options.json": Layout("ort_session_options", "setting",
                                                 transpose=("settings", "latency")),
    "peers.json": Layout("peers", split=("rows",)),
    "pretrain_cpu.json": Layout("pretrain", own=EVERY),
    "prune_rt.json": Layout("prune", "latency", split=("variants",), own=("parent",)),
    "experiments.json": Layout("prune", split=(
        "rotten_tomatoes_narrower_ffn", "vader_amazon_pruning"), nested=True),
    "students_lr.json": Layout("students", "lr 3e-4", "lr 3e-4", split=("tasks",)),
    "students_trec50.json": Layout("students", "trec-50", "trec-50", split=("runs",),
                                   own=EVERY),
    "students_vader_amazon.json": Layout("students", "vader-amazon", "vader-amazon",
                                         split=("runs",), own=("teacher",)),
    "tasks.json": Layout("tasks", "notes", split=("tasks",)),
    "teacher_head_lr.json": Layout("teacher", "head lr", "head lr", split=("runs",), by="task",
                                   own=("before",)),
    "teacher_rt.json": Layout("teacher", "rotten-tomatoes"),
    "teacher_wnut.json": Layout("teacher", "wnut-ner"),
    "teacher_wnut_epochs.json": Layout("teacher", "wnut-ner epochs", "wnut-ner epochs",
                                       split=("runs",), own=("default_before",)),
    "text_in_graph.json": Layout("text_in_graph", "one-file model"),
    "vader_amazon_heads.json": Layout("heads", "vader-amazon", "vader-amazon", own=EVERY),
    "transformers5/distill_rt.json": Layout("distill", "teacher", split=("students",),
                                            own=("vocab_trim_3l",), libraries=TRANSFORMERS5),
    "transformers5/int8_rt.json": Layout("int8", split=("variants",),
                                         own=("arm64_emulation",), libraries=TRANSFORMERS5),
    "transformers5/teacher_rt.json": Layout("teacher", "rotten-tomatoes",
                                            libraries=TRANSFORMERS5),
    "transformers5/pytorch_latency_ab.json": Layout(
        "stack_latency", "teacher pytorch fp32", own=("run_1", "run_2"),
        rename={"run_1": "teacher pytorch fp32", "run_2": "teacher pytorch fp32"},
        libraries={"transformers": "4.57.6 vs 5.24.0"}),
}
"""Each results file by its path under benchmarks/results/, with the machine and the round
of work taken out of its name (layout_of)."""
NAMED = re.compile(r"_(?:xeon|epyc)[a-z0-9_]*(?=\.json$)|^session_?\d+_")
"""What a results file's name said about where or when it was measured."""



def layout_of(name: str) -> Layout:
    """The layout of a results file, by its name without machine or round."""
    key = name if name in LAYOUTS else NAMED.sub("", name)
    if key not in LAYOUTS:
        raise SystemExit(f"{name}: no layout in benchmarks/legacy.py's LAYOUTS")
    return LAYOUTS[key]


def neutral(text):
    """A key or text without the round of work it came from."""
    if not isinstance(text, str):
        return text
    text = OUT_FILE.sub("", ROUND_KEY.sub("", text))
    return ROUND_TEXT.sub(lambda m: "/" if m.group(0).startswith("/") else "an earlier round",
                          text)


def clean(value):
    """Round numbers out of keys and prose, raw samples out."""
    if isinstance(value, dict):
        return {neutral(k): clean(v) for k, v in value.items() if k not in RAW}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return neutral(value)


def machine_of(record, fallback: dict | None) -> tuple[dict, dict]:
    """A record's machine (cpu, machine, flags, cores, threads) and libraries."""
    if isinstance(record, list):  # a compress report lists the machines its bench ran on
        record = record[0] if record else None
    if isinstance(record, dict) and record.get("cpu"):
        libs = dict(record.get("libraries") or {})
        if record.get("python"):
            libs["python"] = record["python"]
        return {k: record.get(k) for k in MACHINE_KEYS}, libs
    if isinstance(record, str):  # prose: "2-core AMD EPYC, flags avx2 avx512_vnni; ..."
        cores = re.search(r"(\d+)-core", record)
        flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
                 if re.search(rf"\b{f}\b", record)]
        cpu = "AMD EPYC" if "EPYC" in record else "Intel Xeon" if "Xeon" in record else "unknown"
        return ({"cpu": cpu, "machine": "x86_64" if cpu != "unknown" else None, "flags": flags,
                 "cores": int(cores.group(1)) if cores else None, "threads": None,
                 "note": record}, {})
    if fallback:
        return fallback
    return ({"cpu": "unknown", "machine": None, "flags": [], "cores": None, "threads": None,
             "note": "the results file recorded no machine"}, {})


def split_payload(payload: dict) -> tuple[dict, str | dict | None, dict | None]:
    """metrics, command, notes of one case's record."""
    metrics = {k: v for k, v in payload.items()
               if k not in TEXT | COMMANDS | {"machine", "machines", "commit"}}
    command = next((payload[k] for k in ("command", "commands") if k in payload), None)
    notes = {k: payload[k] for k in payload if k in TEXT} or None
    return metrics, command, notes


def transposed(data: dict, keys: tuple[str, ...]) -> dict[str, dict]:
    """{metric: {case: v}} (or {metric: {sub: {case: v}}}) -> {case: {metric: v}}."""
    cases: dict[str, dict] = {}
    for key in keys:
        for name, value in (data.get(key) or {}).items():
            inner = value if isinstance(value, dict) else None
            if inner and all(isinstance(v, dict) for v in inner.values()) and key in (
                    "latency",):
                for case, v in inner.items():  # latency: {threads or model: {case: {...}}}
                    cases.setdefault(case, {}).setdefault(key, {})[name] = v
            else:
                cases.setdefault(name, {})[key] = value
    return cases


def convert(path: Path, name: str, commit: str, date: str) -> list[Row]:
    """The rows of one legacy results file, `name` its path under benchmarks/results/."""
    layout = layout_of(name)
    data = json.loads(path.read_text())
    machine, libraries = machine_of(data.get("machine") or data.get("machines"), None)
    if name == "gpu.json":
        machine = {"cpu": "unknown", "machine": "cuda", "flags": [], "cores": None,
                   "threads": None, "gpu": data["device"]}
        libraries = {k: data[k] for k in ("torch", "transformers") if k in data}
    libraries = libraries or dict(layout.libraries)
    out: list[Row] = []

    def add(case: str, payload) -> None:
        payload = payload if isinstance(payload, dict) else {"value": payload}
        payload = clean(payload)
        m, libs = machine_of(payload.get("machine") or payload.get("machines"),
                             (machine, libraries))
        metrics, command, notes = split_payload(payload)
        command = command if command is not None else (data.get("command") or data.get("commands"))
        out.append(Row(layout.suite, neutral(case), metrics, payload.get("commit") or commit,
                       date, m, libs or libraries, clean(command), notes, name))

    def case_name(key) -> str:
        if key in layout.rename:
            name = layout.rename[key]
        else:
            name = neutral(MACHINE_IN_NAME.sub("", CITED.sub("", str(key)))) or "earlier"
            if isinstance(key, str) and key.startswith("/"):  # an artifact's path
                name = key.split("/tasks/")[-1] if "/tasks/" in key else key.rsplit("/", 1)[-1]
        return f"{layout.prefix}/{name}" if layout.prefix else name

    taken = set(layout.split) | set(layout.own) | set(layout.transpose)
    for key in layout.split:
        group = data[key]
        if layout.nested:  # experiment / variant; the experiment's scalars as one case
            scalars = {k: v for k, v in group.items() if not isinstance(v, dict)}
            for sub, v in group.items():
                if isinstance(v, dict):
                    add(f"{key.replace('_', ' ')}/{sub}", v | scalars)
        elif isinstance(group, list):
            for item in group:
                label = item.get(layout.by)
                if layout.suite == "gpu" and item.get("compiled"):
                    label = f"{label} compiled"
                if layout.suite == "teacher":
                    label = f"{label} lr {item.get('lr')} head lr {item.get('head_lr')}"
                add(case_name(label), item)
        else:
            for sub, v in group.items():
                add(case_name(sub), v)
    own = layout.own if layout.own != EVERY else tuple(
        k for k, v in data.items() if isinstance(v, dict) and k not in layout.split)
    taken |= set(own)
    for key in own:
        add(case_name(key), data[key])
    for case, metrics in transposed(data, layout.transpose).items():
        add(case, metrics)
    rest = {k: v for k, v in data.items() if k not in taken}
    metrics, _, notes = split_payload(clean(rest))
    if metrics or (notes and not out):
        add(layout.rest, rest)
    elif notes:  # prose about the whole file: beside each of its rows
        for r in out:
            r.notes = (r.notes or {}) | notes
    return out


def last_commit(path: Path) -> tuple[str, str]:
    """The commit that last wrote a committed file, and its date (UTC)."""
    got = subprocess.run(["git", "log", "-1", "--format=%H %cI", "--", str(path.resolve())],
                         cwd=store.HERE, capture_output=True, text=True, check=False)
    if not got.stdout.strip():
        return store.git_commit(), ""
    commit, date = got.stdout.split()
    return commit, date


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--append", action="store_true", help="add the rows to the store")
    a = ap.parse_args()
    results = store.HERE / "results"
    new = []
    for path in sorted(a.files, key=lambda p: last_commit(p)[1]):  # oldest first
        name = str(path.resolve().relative_to(results.resolve()))
        new += convert(path, name, *last_commit(path))
    if a.append:
        store.append(new)
        print(f"{len(new)} rows appended to {store.STORE}", file=sys.stderr)
    else:
        for r in new:
            print(store.dumps(r))


if __name__ == "__main__":
    main()
