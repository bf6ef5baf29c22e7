"""The trim-vocab stage: model artifact in, smaller model artifact out, outputs checked."""

from __future__ import annotations

from pathlib import Path

from edgebert import artifact
from edgebert.config import TaskConfig, to_dict
from edgebert.data.encode import encode
from edgebert.data.tasks import load_task
from edgebert.errors import UserError
from edgebert.kinds import kind
from edgebert.metrics import points, reference
from edgebert.modeling import (
    from_pretrained,
    head_class,
    load_tokenizer,
    non_wordpiece,
    save_pretrained,
)
from edgebert.predict import logits, score, torch_forward
from edgebert.sources import resolve_data, resolve_model
from edgebert.stages.trim.config import TrimVocabConfig
from edgebert.vocab import (
    check_same_tokens,
    piece_counts,
    texts_of,
    trim_embeddings_,
    trimmed_tokenizer,
    used_ids,
)

WIDEN = (2000, 5000, 10000, 20000)
"""Common pieces added, in turn, when the kept texts' own pieces lose more than
--max-drop dev points: the vocabulary's first N real pieces (WordPiece trainers, BERT's
included, add pieces roughly in order of frequency), then the whole vocabulary."""


def widenings(tokenizer, used: list[int], max_drop: float | None,
              rarer: list[list[int]] = ()):
    """The id sets trimming tries in order: the kept texts' pieces (those used at least
    --min-count times), the sets at each lower count (`rarer`, ending with every piece the
    kept texts use), then those plus the first N pieces of the vocabulary for each N in
    WIDEN, then everything (no guard: the first set only)."""
    yield used
    if max_drop is None:
        return
    yield from rarer
    used = rarer[-1] if rarer else used
    ordered = sorted((i, p) for p, i in tokenizer.get_vocab().items())
    real = [i for i, p in ordered if not p.startswith("[unused")]  # BERT's 994 placeholders
    for n in WIDEN:
        if n < len(real):
            yield sorted(set(used) | set(real[:n]))
    yield [i for i, _ in ordered]


def run(cfg: TrimVocabConfig, log=print) -> Path:
    """Trim `cfg.model`'s vocabulary; the outputs on the kept texts must not change.

    >>> # run(TrimVocabConfig(model="runs/rt/student", out="runs/rt/student-trim"))
    """
    out = Path(cfg.out)
    if artifact.already_done(out, log, "trim-vocab"):
        return out
    source = resolve_model(cfg.model)
    other = non_wordpiece(source)
    if other:
        raise UserError(f"{cfg.model}: a {other} tokenizer; trimming keeps WordPiece "
                        f"vocabularies only (a BPE or Unigram vocabulary's merges and scores "
                        f"would need rebuilding)")
    record = artifact.read_json(Path(source) / "stage.json")
    t = record["task"]
    task = load_task(TaskConfig.from_record(t))
    tokenizer = load_tokenizer(source)
    kept_texts = [x for s in cfg.splits for x in texts_of(task.splits[s], task.kind)]
    if cfg.corpus:
        path = resolve_data(cfg.corpus)
        try:
            kept_texts += [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError:
            raise UserError(f"{path}: not UTF-8 text; re-save it as UTF-8") from None
    counts = piece_counts(tokenizer, kept_texts)
    used, *rarer = [used_ids(tokenizer, kept_texts, n, counts)
                    for n in range(cfg.min_count, 0, -1)]
    with artifact.building(out, "trim-vocab", to_dict(cfg), [source]) as work:
        new_tok = trimmed_tokenizer(tokenizer, used)
        changed, resplit = check_same_tokens(tokenizer, new_tok, used, kept_texts)
        if changed:
            raise UserError(f"{cfg.model}: {changed} kept texts tokenize differently after "
                            f"trimming; the tokenizer is not plain WordPiece, refusing to trim it")

        def outputs(model, tok, split):
            enc = encode(task, split, tok, t["max_length"])
            return enc, logits(torch_forward(model), enc, tok.pad_token_id, task.kind)

        def unchanged_outputs(model, tok):
            """Outputs on the first kept split's examples whose pieces were all kept (all of
            them at --min-count 1): trimming must not move these."""
            enc = kind(task.kind).encode(same, tok, t["max_length"], 64)  # encode()'s stride
            return logits(torch_forward(model), enc, tok.pad_token_id, task.kind)

        def trimmed(ids):
            m = from_pretrained(head_class(task.kind), source)
            trim_embeddings_(m, ids)
            return m

        model = from_pretrained(head_class(task.kind), source)
        before = {s: score(task, s, *outputs(model, tokenizer, s)) for s in ("dev", "test")}
        vocab_before = model.config.vocab_size
        metric = task.metric
        keep, tries = used, []
        for extra in widenings(tokenizer, used, cfg.max_drop, rarer):
            keep = extra
            new_tok = trimmed_tokenizer(tokenizer, keep)
            model = trimmed(keep)
            dev = score(task, "dev", *outputs(model, new_tok, "dev"))
            drop = points(before["dev"], metric) - points(dev, metric)
            tries.append({"vocab": len(keep), "dev_drop_points": drop})
            budget = "no guard" if cfg.max_drop is None else f"budget {cfg.max_drop:g}"
            log(f"vocabulary {len(keep)}: dev {metric} {dev[metric]:.4f} (drop {drop:.2f} points, "
                f"{budget})")
            if cfg.max_drop is None or drop <= cfg.max_drop:
                break
        kept_ids = set(keep)
        same = task.splits[cfg.splits[0]]
        if not kept_ids.issuperset(counts):  # pieces dropped (--min-count): their examples out
            def pieces(ex) -> set[int]:
                rows = tokenizer(kind(task.kind).texts(ex), add_special_tokens=False)["input_ids"]
                return {i for row in rows for i in row}

            same = [ex for ex in same if kept_ids.issuperset(pieces(ex))]
        ref_out = unchanged_outputs(from_pretrained(head_class(task.kind), source), tokenizer)
        new_out = unchanged_outputs(model, new_tok)
        max_diff = max((float(abs(a - b).max()) for a, b in zip(ref_out, new_out)), default=0.0)
        if max_diff > 1e-4:
            raise UserError(f"{cfg.model}: outputs on kept text moved by {max_diff:.2e} after "
                            f"trimming; refusing the trimmed model")
        after = {s: score(task, s, *outputs(model, new_tok, s)) for s in ("dev", "test")}
        size_before = artifact.dir_size_mb(Path(source))
        save_pretrained(work, model, new_tok)
        metrics = after | {
            "metric": metric, "params": sum(p.numel() for p in model.parameters()),
            "size_mb": artifact.dir_size_mb(work), "size_mb_before": size_before,
            "vocab_before": vocab_before, "vocab_after": len(keep),
            "max_abs_diff_kept_text": max_diff, "kept_texts": len(kept_texts),
            "vocab_used_by_kept_texts": len(rarer[-1] if rarer else used),
            "min_count": cfg.min_count,
            "kept_texts_resplit": resplit, "unchanged_examples_checked": len(same), "tries": tries,
            "before": {s: reference(scores) for s, scores in before.items()},
            "delta": {s: after[s][metric] - before[s][metric] for s in ("dev", "test")}}
        log(f"vocabulary {vocab_before} -> {len(keep)}, size {size_before:.1f} -> "
            f"{metrics['size_mb']:.1f} MB, test {metric} {before['test'][metric]:.4f} -> "
            f"{after['test'][metric]:.4f}, max |d logits| on kept text {max_diff:.1e}")
        stage_record = {"stage": "trim-vocab", "parent": cfg.model, "parent_path": source,
                        "task": t, "config": to_dict(cfg)}
        return artifact.finish(work, out, stage_record, metrics)
