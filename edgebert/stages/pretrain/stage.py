"""The pretrain stage: corpus + tokenizer in, a pretraining model artifact out: BERT
(MLM + NSP), RoBERTa (MLM on single segments) or ALBERT (MLM + sentence order).

Through the one training loop (checkpoints, exact resume, bf16 autocast on a
GPU, DDP under torchrun). Held-out documents give the metrics: MLM loss and
accuracy on masked positions, perplexity, NSP or SOP accuracy. `edgebert finetune
--model <out>` starts from the result.
"""

from __future__ import annotations

import contextlib
import math
import random
from functools import partial
from pathlib import Path

import torch

from edgebert import artifact
from edgebert.config import to_dict
from edgebert.errors import UserError
from edgebert.sources import cache_dir, resolve_model
from edgebert.stages.pretrain.config import PretrainConfig
from edgebert.stages.pretrain.examples import (
    Corpus,
    cache_key,
    collate_pretrain,
    make_pairs,
    mask_statically,
    tokenize_corpus,
    word_starts,
)
from edgebert.train import distributed, pick_device, train

SHAPES = {"tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                       intermediate_size=512),
          "bert-small": dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8,
                             intermediate_size=2048),
          "bert-base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                            intermediate_size=3072)}


ARCHS = {  # arch: (config class, pretraining class, objective besides MLM)
    "bert": ("BertConfig", "BertForPreTraining", "nsp"),
    "roberta": ("RobertaConfig", "RobertaForMaskedLM", "none"),
    "albert": ("AlbertConfig", "AlbertForPreTraining", "sop"),
}


def objective(cfg: PretrainConfig, arch: str) -> str:
    """nsp, sop or none: the pair objective pretraining trains beside MLM."""
    pair = ARCHS[arch][2]
    return "none" if pair == "nsp" and not cfg.nsp else pair


def init_arch(cfg: PretrainConfig) -> str:
    """The architecture that pretrains: --arch, or the --init encoder's own."""
    if not cfg.init:
        return cfg.arch
    from transformers import AutoConfig

    model_type = AutoConfig.from_pretrained(resolve_model(cfg.init)).model_type
    if model_type not in ARCHS:
        raise UserError(f"--init {cfg.init}: a {model_type} model; continued pretraining "
                        f"takes {', '.join(ARCHS)} encoders")
    return model_type


def build_model(cfg: PretrainConfig, tokenizer, arch: str):
    import transformers

    config_name, model_name, _ = ARCHS[arch]
    model_class = getattr(transformers, model_name)
    if cfg.init:
        return model_class.from_pretrained(resolve_model(cfg.init), use_safetensors=True,
                                           attn_implementation="sdpa")
    config_class = getattr(transformers, config_name)
    if cfg.config in SHAPES:
        shape = SHAPES[cfg.config]
    elif Path(cfg.config).is_file():
        shape = {k: v for k, v in artifact.read_json(Path(cfg.config)).items()
                 if k in config_class().to_dict()}
    else:
        raise UserError(f"--config {cfg.config}: not one of {', '.join(SHAPES)} nor a "
                        f"config.json file")
    positions = max(512, cfg.max_length)
    extra = {"roberta": {"type_vocab_size": 1, "max_position_embeddings": positions + 2},
             "albert": {"embedding_size": min(128, shape.get("hidden_size", 768))}}.get(arch, {})
    settings = {"max_position_embeddings": positions, **extra,
                **{k: v for k, v in shape.items() if k != "vocab_size"}}
    config = config_class(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                          **settings)
    config._attn_implementation = "sdpa"  # fused scaled-dot-product attention kernels
    torch.manual_seed(cfg.train.seed)
    return model_class(config)


def run(cfg: PretrainConfig, log=print, *, restart: bool = False) -> Path:
    """Pretrain a model on `cfg.corpus` into `cfg.out`; skip if already finished. Under
    torchrun every rank trains and rank 0 alone writes the artifact.

    >>> # run(PretrainConfig(corpus="corpus.txt", tokenizer="runs/tok", out="runs/pretrained"))
    """
    from edgebert.modeling import load_tokenizer, non_wordpiece, quiet_transformers, save_pretrained

    quiet_transformers()
    out = Path(cfg.out)
    if artifact.already_done(out, log, "pretrain"):
        return out
    tok_dir = cfg.tokenizer or (resolve_model(cfg.init) if cfg.init else None)
    if tok_dir is None:
        raise UserError("--tokenizer: needed when pretraining from scratch "
                        "(`edgebert tokenizer train` makes one)")
    tokenizer = load_tokenizer(tok_dir, fix="pass --tokenizer DIR (`edgebert tokenizer train` "
                                            "makes one)")
    other = non_wordpiece(tok_dir) if cfg.whole_word else None
    if other:
        raise UserError(f"--whole-word: {tok_dir} is a {other} tokenizer; "
                        f"whole words are told by WordPiece's '##' pieces")
    rank, world = distributed(pick_device(cfg.train))
    cache_root = Path(cfg.cache) if cfg.cache else cache_dir() / "tokens"
    if rank == 0:  # one rank tokenises; the others wait and read the cache
        cache = tokenize_corpus(Path(cfg.corpus), tokenizer, cache_root, log)
    if world > 1:
        torch.distributed.barrier()
        if rank != 0:
            cache = cache_root / cache_key(Path(cfg.corpus), tokenizer)
    corpus = Corpus(cache)
    if len(corpus) < 2:
        raise UserError(f"--corpus {cfg.corpus}: needs at least 2 documents (blank lines "
                        f"between them) for next-sentence pairs")
    doc_ids = list(range(len(corpus)))
    random.Random(cfg.train.seed).shuffle(doc_ids)
    n_held = max(1, int(len(doc_ids) * cfg.heldout))
    held, kept = doc_ids[:n_held], doc_ids[n_held:]
    special = [tokenizer.cls_token_id, tokenizer.sep_token_id]
    arch = init_arch(cfg)
    pair = objective(cfg, arch)
    pairs = partial(make_pairs, corpus, max_length=cfg.max_length, objective=pair,
                    cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id)
    features, heldout = pairs(kept, seed=cfg.train.seed), pairs(held, seed=cfg.train.seed + 1)
    mask = dict(pad_id=tokenizer.pad_token_id, mask_id=tokenizer.mask_token_id,
                vocab_size=len(tokenizer), special_ids=special)
    if not cfg.dynamic_masking:
        features = mask_statically(features, cfg.train.seed, **mask)
    heldout = mask_statically(heldout[:2048], 0, **mask)  # the same masks at every evaluation
    starts = word_starts(tokenizer) if cfg.whole_word else None
    collate = partial(collate_pretrain, whole_word=starts, **mask)
    if rank == 0:
        log(f"{len(features)} training and {len(heldout)} held-out examples of up to "
            f"{cfg.max_length} tokens ({arch}: MLM"
            f"{' + ' + pair.upper() if pair != 'none' else ' only'}, "
            f"{'dynamic' if cfg.dynamic_masking else 'static'}"
            f"{', whole-word' if cfg.whole_word else ''} masking)")
    model = build_model(cfg, tokenizer, arch)
    if cfg.freeze_encoder:  # the tied output embedding is the encoder's: it stays too
        _parts(model)[0].requires_grad_(False)
    # rank 0 builds the artifact; the other ranks train alongside and write nothing
    building = artifact.building(out, "pretrain", to_dict(cfg), [str(cfg.corpus)], restart) \
        if rank == 0 else contextlib.nullcontext(artifact.partial_dir(out))
    with building as work:
        if world > 1:
            torch.distributed.barrier()

        pretrainer = MaskedPretrainer(model)

        def evaluate() -> dict:
            return heldout_metrics(pretrainer, heldout, collate, cfg.train.batch_size)

        before = evaluate()
        result = train(pretrainer, features, _loss, cfg.train,
                       collate=collate, evaluate=evaluate, metric="mlm_loss",
                       greater_is_better=False, checkpoint_dir=work / "checkpoint",
                       desc="pretrain")
        after = evaluate()
        if world > 1:  # no collective calls after training; rank 0 writes alone
            torch.distributed.destroy_process_group()
        if rank != 0:
            return out
        save_pretrained(work, model, tokenizer)
        metrics = {"before": before, "heldout": after,
                   "params": sum(p.numel() for p in model.parameters()),
                   "examples": {"train": len(features), "heldout": len(heldout),
                                # real tokens (no padding) per training example, on average
                                "mean_tokens": sum(len(f["input_ids"]) for f in features)
                                / max(len(features), 1)},
                   "train": {"seconds": result.seconds, "steps": result.steps,
                             "precision": result.precision,
                             "ranks": result.ranks, "ranks_in_sync": result.ranks_in_sync,
                             "checkpoint_writers": result.checkpoint_writers,
                             "tokens_per_step": cfg.train.batch_size * cfg.max_length
                             * cfg.train.grad_accum * result.ranks,
                             "history": result.history},
                   "size_mb": artifact.dir_size_mb(work)}
        log(f"held-out MLM loss {before['mlm_loss']:.3f} -> {after['mlm_loss']:.3f}, accuracy "
            f"{after['mlm_accuracy']:.3f}" + "".join(
                f", {k.split('_')[0].upper()} accuracy {after[k]:.3f}"
                for k in ("nsp_accuracy", "sop_accuracy") if k in after))
        record = {"stage": "pretrain", "arch": arch, "objective": pair,
                  "corpus": str(cfg.corpus), "tokenizer": str(tok_dir),
                  "config": to_dict(cfg), "world_size": result.ranks}
        return artifact.finish(work, out, record, metrics)


class MaskedPretrainer(torch.nn.Module):
    """The pretraining model with its MLM head run on the masked positions alone.

    Transformers' *ForPreTraining / *ForMaskedLM project every position onto the
    vocabulary; 85 % of positions carry no label. The projection is most of a small
    model's work (tiny: 8,000 x 128 per position against two 128-wide layers) and a
    large share of a big one's, so picking the labelled positions first gives the same
    loss for less work (tiny on the CPU: 30 steps 36.0 -> 11.6 s). The heads are the model's own
    modules: its weights, its tied embedding, its saved checkpoint.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels, token_type_ids=None,
                next_sentence_label=None, sentence_order_label=None) -> dict:
        encoder, mlm_head, pair_head = _parts(self.model)
        out = encoder(input_ids=input_ids, attention_mask=attention_mask,
                      token_type_ids=token_type_ids)
        sel = labels != -100
        logits = mlm_head(out[0][sel]).float()
        target = labels[sel]
        res = {"mlm_logits": logits, "mlm_labels": target}
        loss = torch.nn.functional.cross_entropy(logits, target)
        pair_label = next_sentence_label if next_sentence_label is not None \
            else sentence_order_label
        if pair_label is not None:
            res["pair_logits"] = pair_head(out[1]).float()
            loss = loss + torch.nn.functional.cross_entropy(res["pair_logits"], pair_label)
        return res | {"loss": loss}


def _parts(model):
    """(encoder, MLM head, pair head or None) of a pretraining model of ARCHS."""
    if hasattr(model, "cls"):  # BertForPreTraining
        return model.bert, model.cls.predictions, model.cls.seq_relationship
    if hasattr(model, "sop_classifier"):  # AlbertForPreTraining
        return model.albert, model.predictions, model.sop_classifier
    return model.roberta, model.lm_head, None  # RobertaForMaskedLM


def _loss(net, batch: dict) -> dict:
    return {"loss": net(**batch)["loss"]}


PAIR_METRICS = {"next_sentence_label": "nsp_accuracy", "sentence_order_label": "sop_accuracy"}


def heldout_metrics(pretrainer: MaskedPretrainer, heldout: list[dict], collate,
                    batch_size: int) -> dict:
    """MLM loss / accuracy over masked positions, perplexity, NSP or SOP accuracy."""
    device = next(pretrainer.parameters()).device
    pretrainer.eval()
    loss_sum = correct = masked = pair_right = pair_n = 0
    pair_name = None
    with torch.no_grad():
        for i in range(0, len(heldout), batch_size):
            b = {k: v.to(device) for k, v in collate(heldout[i:i + batch_size]).items()}
            out = pretrainer(**b)
            logits, target = out["mlm_logits"], out["mlm_labels"]
            loss_sum += float(torch.nn.functional.cross_entropy(logits, target,
                                                                reduction="sum"))
            correct += int((logits.argmax(-1) == target).sum())
            masked += len(target)
            for key, name in PAIR_METRICS.items():
                if key in b:
                    pair_right += int((out["pair_logits"].argmax(-1) == b[key]).sum())
                    pair_n += len(b[key])
                    pair_name = name
    pretrainer.train()
    mlm = loss_sum / max(masked, 1)
    res = {"mlm_loss": mlm, "mlm_accuracy": correct / max(masked, 1),
           "perplexity": math.exp(min(mlm, 50)), "masked_tokens": float(masked)}
    if pair_n:
        res[pair_name] = pair_right / pair_n
    return res
