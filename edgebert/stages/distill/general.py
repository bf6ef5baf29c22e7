"""General (task-agnostic) distillation on a text corpus, DistilBERT style.

The student copies teacher layers (or is built narrower) and learns, on plain
text, to reproduce the teacher's hidden states (cosine / MSE, projected when
widths differ) and attention maps; with an MLM head on the teacher it also
learns the teacher's masked-token distributions (KL at temperature T) and the
MLM labels. The result is an encoder that `edgebert finetune` starts from.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edgebert import artifact
from edgebert.config import to_dict
from edgebert.data.features import INPUTS
from edgebert.data.masking import mask_tokens
from edgebert.distillation import Trainable, distill_loss, layer_map
from edgebert.errors import UserError
from edgebert.losses import view
from edgebert.modeling import count_params, from_pretrained, load_tokenizer, save_pretrained
from edgebert.sources import resolve_data, resolve_model
from edgebert.stages.distill.config import DistillConfig
from edgebert.stages.distill.students import build_student, every_other


def load_encoder(source: str, eager: bool):
    """(model, has_mlm): a BertForMaskedLM when the checkpoint has an MLM head."""
    import transformers
    from safetensors import safe_open

    kwargs = {"attn_implementation": "eager"} if eager else {}
    has_mlm = False
    weights = Path(source) / "model.safetensors"
    if weights.exists():
        with safe_open(str(weights), "pt") as fh:
            has_mlm = any(k.startswith("cls.predictions") for k in fh.keys())
    cls = transformers.BertForMaskedLM if has_mlm else transformers.BertModel
    return from_pretrained(cls, source, "teacher", **kwargs).eval(), has_mlm


def corpus_features(path: Path, tokenizer, max_length: int) -> list[dict]:
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; re-save it as UTF-8") from None
    if len(lines) < 10:
        raise UserError(f"{path}: {len(lines)} non-empty lines; general distillation needs "
                        f"a corpus (one text per line)")
    enc = tokenizer(lines, truncation=True, max_length=max_length, return_special_tokens_mask=True)
    return [{k: enc[k][i] for k in INPUTS if k in enc} | {"special": enc["special_tokens_mask"][i]}
            for i in range(len(lines))]


def run(cfg: DistillConfig, log=print, *, restart: bool = False) -> Path:
    """Distil the encoder `cfg.teacher` on `cfg.corpus` into a smaller encoder: the
    distill-general stage (`edgebert distill --corpus`).

    >>> # run(DistillConfig(teacher="minilm-l6", corpus="corpus.txt",
    >>> #                   layers=[0, 2, 4], out="runs/general-3l"))
    """
    out = Path(cfg.out)
    if artifact.already_done(out, log, "distill-general"):
        return out
    source = resolve_model(cfg.teacher)
    tokenizer = load_tokenizer(source)
    loss_cfg = cfg.loss
    teacher, has_mlm = load_encoder(source, eager=loss_cfg.attn_mse > 0)
    if not has_mlm:
        from dataclasses import replace

        hidden = loss_cfg.cos or loss_cfg.hidden_mse or loss_cfg.attn_mse
        loss_cfg = replace(loss_cfg, kl=0.0, ce=0.0, cos=loss_cfg.cos if hidden else 1.0,
                           hidden_mse=loss_cfg.hidden_mse if hidden else 1.0)
        log(f"{cfg.teacher} has no MLM head: hidden-state distillation (cos {loss_cfg.cos}, "
            f"mse {loss_cfg.hidden_mse}, attention {loss_cfg.attn_mse})")
    feats = corpus_features(resolve_data(cfg.corpus), tokenizer, cfg.max_length)
    held = max(1, min(1000, len(feats) // 20))
    train_feats, heldout = feats[:-held], feats[-held:]
    torch.manual_seed(cfg.train.seed)
    student = build_student(teacher, cfg)
    s_cfg, t_cfg = student.config, teacher.config
    proj = None
    if (loss_cfg.cos or loss_cfg.hidden_mse) and s_cfg.hidden_size != t_cfg.hidden_size:
        proj = torch.nn.ModuleList(torch.nn.Linear(s_cfg.hidden_size, t_cfg.hidden_size)
                                   for _ in range(s_cfg.num_hidden_layers + 1))
    mapping = layer_map(s_cfg.num_hidden_layers, t_cfg.num_hidden_layers)

    from edgebert.data.encode import pad_batch
    from edgebert.train import pick_device, train

    device = pick_device(cfg.train)
    teacher.to(device)
    pad_id = tokenizer.pad_token_id

    def collate(fs):
        b = pad_batch(fs, pad_id, INPUTS)
        special = pad_batch([{"input_ids": f["special"]} for f in fs], 1, ("input_ids",))
        return {k: torch.from_numpy(v) for k, v in b.items()} | {
            "special": torch.from_numpy(special["input_ids"]).bool()}

    def loss_fn(module: Trainable, batch: dict, generator=None) -> dict:
        inputs = {k: batch[k] for k in INPUTS if k in batch}
        labels = None
        if has_mlm:
            inputs["input_ids"], labels = mask_tokens(
                batch["input_ids"], batch["special"], tokenizer.mask_token_id,
                t_cfg.vocab_size, generator=generator)
        want = {"output_hidden_states": True, "output_attentions": bool(loss_cfg.attn_mse)}
        with torch.no_grad():
            t_out = view(teacher(**inputs, **want))
        s_raw = module.student(**inputs, labels=labels, **want) if has_mlm else \
            module.student(**inputs, **want)
        s_out = view(s_raw) | {"loss": getattr(s_raw, "loss", None)}
        return distill_loss(s_out, t_out, inputs | {"labels": labels}, loss_cfg,
                            "mlm" if has_mlm else "encoder", mapping, module.proj)

    trainable = Trainable(student, proj)

    @torch.no_grad()
    def evaluate() -> dict:
        g = torch.Generator().manual_seed(0)  # the same masks every time, global RNG untouched
        was_training = trainable.training
        trainable.eval()  # no dropout, also when called outside the training loop
        losses, cos = [], []
        for i in range(0, len(heldout), 32):
            batch = {k: v.to(device) for k, v in collate(heldout[i:i + 32]).items()}
            losses.append(float(loss_fn(trainable, batch, g)["loss"].detach()))
            with torch.no_grad():
                inputs = {k: batch[k] for k in INPUTS if k in batch}
                s = student(**inputs,
                            output_hidden_states=True).hidden_states[-1]
                t = teacher(**inputs,
                            output_hidden_states=True).hidden_states[-1]
                if proj is not None:
                    s = proj[-1](s)
                m = batch["attention_mask"].float()
                c = torch.nn.functional.cosine_similarity(s, t, dim=-1)
                cos.append(float((c * m).sum() / m.sum()))
        trainable.train(was_training)
        return {"heldout_loss": sum(losses) / len(losses), "heldout_cos": sum(cos) / len(cos)}

    with artifact.building(out, "distill-general", to_dict(cfg), [source], restart) as work:
        before = evaluate()
        result = train(trainable, train_feats, loss_fn, cfg.train, collate=collate,
                       evaluate=evaluate, metric="heldout_loss", greater_is_better=False,
                       checkpoint_dir=work / "checkpoint", desc="distill (corpus)")
        after = evaluate()
        log(f"held-out loss {before['heldout_loss']:.4f} -> {after['heldout_loss']:.4f}, "
            f"last-layer cosine to the teacher {before['heldout_cos']:.3f} -> "
            f"{after['heldout_cos']:.3f}")
        save_pretrained(work, student, tokenizer)
        metrics = {"heldout": after, "heldout_before": before, "mlm": has_mlm,
                   "params": count_params(student), "teacher_params": count_params(teacher),
                   "size_mb": artifact.dir_size_mb(work),
                   "train": {"seconds": result.seconds, "steps": result.steps,
                             "precision": result.precision,
                             "lines": len(train_feats), "heldout_lines": len(heldout),
                             "history": result.history}}
        record = {"stage": "distill-general", "parent": cfg.teacher, "parent_path": source,
                  "task": None, "layers": None if cfg.narrow else
                  (cfg.layers or every_other(t_cfg.num_hidden_layers)),
                  "layer_map": mapping, "config": to_dict(cfg)}
        return artifact.finish(work, out, record, metrics)
