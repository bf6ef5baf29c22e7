"""Pretraining: masking statistics, NSP pairs, the tokenizer, a tiny run, and DDP on 2 CPUs."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgebert.data.masking import mask_tokens

WORDS = ("the cat dog sat ran on under mat tree house river bird sang flew over hill small "
         "large red green quickly slowly morning evening happy sad old young").split()


def write_corpus(path: Path, docs: int = 120, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for d in range(docs):
            topic = WORDS[d % len(WORDS)]
            for _ in range(rng.randint(1, 6)):
                fh.write(" ".join([topic] + rng.sample(WORDS, 6)).capitalize() + ".\n")
            fh.write("\n")
    return path


def test_mlm_masking_statistics_hold():
    """15 % chosen; of those 80 % [MASK], 10 % random, 10 % kept; specials never chosen."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (400, 128), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True  # [CLS] ... [SEP]
    special[:, 100:] = True  # padding
    x, y = mask_tokens(ids, special, mask_id=4, vocab_size=1000, generator=g)
    chosen = y != -100
    assert not chosen[special].any()
    frac = chosen.sum().item() / (~special).sum().item()
    assert abs(frac - 0.15) < 0.005
    n = chosen.sum().item()
    masked = (x[chosen] == 4).sum().item() / n
    kept = (x[chosen] == ids[chosen]).sum().item() / n
    assert abs(masked - 0.8) < 0.01
    assert abs(kept - 0.1) < 0.01  # (a random draw equal to the original is negligible)
    assert abs(1 - masked - kept - 0.1) < 0.01
    assert torch.equal(x[~chosen], ids[~chosen])


def test_whole_word_masking_masks_every_piece_of_a_word():
    from edgebert.stages.pretrain.examples import mask_whole_words

    starts = torch.ones(50, dtype=torch.bool)
    starts[20:40] = False  # ids 20..39 are '##' continuations
    torch.manual_seed(0)
    ids = torch.tensor([[2] + [5, 25, 26, 6, 27, 7, 8, 28, 29, 30] * 30 + [3]])
    special = (ids == 2) | (ids == 3)
    _, y = mask_whole_words(ids, special, starts, mask_id=4, vocab_size=50)
    chosen = (y != -100)[0].tolist()
    words, cur = [], []
    for i, t in enumerate(ids[0].tolist()):
        if special[0, i] or starts[t]:
            if cur:
                words.append(cur)
            cur = [] if special[0, i] else [i]
        else:
            cur.append(i)
    assert any(chosen)
    for w in words:
        assert len({chosen[i] for i in w}) == 1  # all pieces or none


@pytest.fixture(scope="module")
def corpus_and_tok(tmp_path_factory):
    from edgebert.stages.pretrain.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("pretrain")
    corpus = write_corpus(root / "corpus.txt")
    tok = train_tokenizer(corpus, root / "tok", vocab_size=300, min_frequency=1,
                          log=lambda *_: None)
    return corpus, tok


def test_tokenizer_opens_with_autotokenizer(corpus_and_tok):
    from transformers import AutoTokenizer

    _, tok_dir = corpus_and_tok
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    enc = tok("The Cát sat", "on the mat")
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    assert pieces[0] == "[CLS]" and pieces.count("[SEP]") == 2
    assert "cat" in pieces  # lowercased, accent stripped
    assert enc["token_type_ids"][-1] == 1
    for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        assert special in tok.get_vocab()


def test_nsp_pairs_are_balanced_and_negatives_come_from_other_documents(corpus_and_tok,
                                                                        tmp_path):
    from transformers import AutoTokenizer

    from edgebert.stages.pretrain.examples import Corpus, make_pairs, tokenize_corpus

    corpus_path, tok_dir = corpus_and_tok
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    cache = tokenize_corpus(corpus_path, tok, tmp_path, log=lambda *_: None)
    assert tokenize_corpus(corpus_path, tok, tmp_path, log=lambda *_: None) == cache  # reused
    corpus = Corpus(cache)
    assert len(corpus) == 120
    pairs = make_pairs(corpus, list(range(len(corpus))), 48, "nsp", 0, tok.cls_token_id,
                       tok.sep_token_id)
    labels = [p["next_sentence_label"] for p in pairs]
    assert labels.count(0) == labels.count(1) > 20
    for p in pairs:
        assert len(p["input_ids"]) <= 48
        assert p["input_ids"][0] == tok.cls_token_id and p["input_ids"][-1] == tok.sep_token_id
        if p["next_sentence_label"] == 1:  # NotNext
            assert p["doc_b"] != p["doc_a"]
        else:
            assert p["doc_b"] == p["doc_a"]


def test_tiny_pretraining_lowers_mlm_loss_and_finetunes(corpus_and_tok, tmp_path):
    from edgebert.config import TrainConfig
    from edgebert.stages.pretrain.config import PretrainConfig
    from edgebert.stages.pretrain.stage import run as pretrain

    corpus, tok = corpus_and_tok
    out = tmp_path / "pre"
    cfg = PretrainConfig(corpus=str(corpus), tokenizer=str(tok), config="tiny", max_length=48,
                         out=str(out), cache=str(tmp_path / "cache"), heldout=0.2,
                         train=TrainConfig(max_steps=40, batch_size=16, lr=1e-3, warmup=0.1,
                                           eval_every=20, threads=1))
    pretrain(cfg, log=lambda *_: None)
    m = json.loads((out / "metrics.json").read_text())
    assert m["heldout"]["mlm_loss"] < m["before"]["mlm_loss"] - 0.5
    assert "nsp_accuracy" in m["heldout"]
    # the saved directory opens as a transformers model with the trained weights and the
    # tokenizer it was trained with
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    saved = load_file(str(out / "model.safetensors"))
    model = AutoModelForMaskedLM.from_pretrained(str(out))
    state = model.state_dict()
    shared = [k for k in saved if k in state]
    assert any(k.endswith("encoder.layer.0.attention.self.query.weight") for k in shared)
    assert any(k.startswith("cls.predictions") for k in shared)  # the MLM head, trained
    assert all(torch.equal(state[k], saved[k]) for k in shared)
    loaded, trained = AutoTokenizer.from_pretrained(str(out)), AutoTokenizer.from_pretrained(str(tok))
    assert loaded.get_vocab() == trained.get_vocab()
    assert model.config.vocab_size == len(trained)
    text = "a small test sentence"
    assert loaded(text)["input_ids"] == trained(text)["input_ids"]


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_stay_in_sync(corpus_and_tok, tmp_path):
    if not shutil.which("torchrun", path=str(Path(sys.executable).parent)):
        pytest.skip("torchrun is not installed next to this Python")
    corpus, tok = corpus_and_tok
    out = tmp_path / "ddp"
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc-per-node", "2",
           "-m", "edgebert.cli", "pretrain", "--corpus", str(corpus), "--tokenizer", str(tok),
           "--config", "tiny", "--max-length", "48", "--max-steps", "6", "--batch-size", "8",
           "--save-every", "3", "--threads", "1", "--cache", str(tmp_path / "cache"), "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env=os.environ | {"EDGEBERT_QUIET": "1", "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["train"]["ranks"] == 2 and m["train"]["ranks_in_sync"] is True
    assert m["train"]["steps"] == 6
    assert m["train"]["checkpoint_writers"] == 1  # rank 0 alone wrote the checkpoints
    assert not (out / "checkpoint").exists()  # removed once finished
    assert not list(tmp_path.glob("ddp.partial*"))


def test_continued_pretraining_from_an_encoder_without_mlm_head(tiny_bert, tmp_path):
    """The packaged MiniLM has no MLM head: heads start fresh, the decoder tied to the input
    embedding; the encoder's own weights are where training starts."""
    from safetensors.torch import load_file

    from edgebert.config import TrainConfig
    from edgebert.stages.pretrain.config import PretrainConfig
    from edgebert.stages.pretrain.stage import build_model
    from edgebert.stages.pretrain.stage import run as pretrain

    corpus = write_corpus(tmp_path / "c.txt", docs=40)
    cfg = PretrainConfig(corpus=str(corpus), init=str(tiny_bert), max_length=32,
                         out=str(tmp_path / "cont"), cache=str(tmp_path / "cache"), heldout=0.2,
                         nsp=False, train=TrainConfig(max_steps=4, batch_size=8, threads=1))
    from transformers import AutoTokenizer

    model = build_model(cfg, AutoTokenizer.from_pretrained(str(tiny_bert)), "bert")
    start = load_file(str(tiny_bert / "model.safetensors"))
    emb = model.bert.embeddings.word_embeddings.weight
    assert torch.equal(emb, start["embeddings.word_embeddings.weight"])
    assert model.cls.predictions.decoder.weight.data_ptr() == emb.data_ptr()  # tied
    pretrain(cfg, log=lambda *_: None)
    m = json.loads((tmp_path / "cont" / "metrics.json").read_text())
    assert "nsp_accuracy" not in m["heldout"] and m["train"]["steps"] == 4

    # --freeze-encoder: the heads learn, the encoder (and the tied embedding) stays; a
    # later run --init from it starts with those heads, not fresh ones
    heads = dataclasses.replace(cfg, out=str(tmp_path / "heads"), freeze_encoder=True)
    pretrain(heads, log=lambda *_: None)
    after = load_file(str(tmp_path / "heads" / "model.safetensors"))
    assert after["cls.predictions.bias"].abs().sum() > 0  # starts at zeros: it learned
    assert torch.equal(after["bert.embeddings.word_embeddings.weight"],
                       start["embeddings.word_embeddings.weight"])
    assert torch.equal(after["bert.encoder.layer.1.output.dense.weight"],
                       start["encoder.layer.1.output.dense.weight"])
    again = build_model(dataclasses.replace(cfg, init=str(tmp_path / "heads")), None, "bert")
    assert torch.equal(again.cls.predictions.transform.dense.weight,
                       after["cls.predictions.transform.dense.weight"])


def test_sentence_order_pairs_are_consecutive_and_half_swapped(tmp_path):
    from edgebert.stages.pretrain.examples import Corpus, make_pairs, tokenize_corpus
    from edgebert.stages.pretrain.tokenizer import train_tokenizer

    corpus_file = write_corpus(tmp_path / "c.txt", docs=200)
    tok_dir = train_tokenizer(corpus_file, tmp_path / "tok", vocab_size=200, log=lambda *_: None)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    corpus = Corpus(tokenize_corpus(corpus_file, tok, tmp_path / "cache", log=lambda *_: None))
    pairs = make_pairs(corpus, list(range(len(corpus))), 48, "sop", 0, tok.cls_token_id,
                       tok.sep_token_id)
    swapped = [p["sentence_order_label"] for p in pairs]
    assert len(pairs) > 100 and 0.4 < sum(swapped) / len(swapped) < 0.6
    assert all("next_sentence_label" not in p and p["input_ids"].count(tok.sep_token_id) == 2
               for p in pairs)


@pytest.mark.parametrize("arch,tokenizer,pair", [("roberta", "bpe", None),
                                                 ("albert", "wordpiece", "sop_accuracy")])
def test_each_arch_pretrains_with_its_objective_then_finetunes(tmp_path, arch, tokenizer, pair):
    """`pretrain --arch` on a tiny corpus: RoBERTa (MLM alone, here with a byte-level BPE
    tokenizer from `tokenizer train --kind bpe`), ALBERT (MLM + sentence order); the
    result fine-tunes like any checkpoint of its family."""
    from helpers import run_cli, sentiment_rows, write_csv

    corpus = write_corpus(tmp_path / "c.txt", docs=60)
    code, output = run_cli("tokenizer", "train", "--corpus", corpus, "--vocab-size", "300",
                           "--kind", tokenizer, "--min-frequency", "1", "--out", tmp_path / "tok")
    assert code == 0, output
    out = tmp_path / "pre"
    code, output = run_cli("pretrain", "--corpus", corpus, "--tokenizer", tmp_path / "tok",
                           "--arch", arch, "--config", "tiny", "--max-length", "32",
                           "--max-steps", "3", "--batch-size", "8", "--heldout", "0.2",
                           "--cache", tmp_path / "cache", "--threads", "1", "--out", out)
    assert code == 0, output
    config = json.loads((out / "config.json").read_text())
    m = json.loads((out / "metrics.json").read_text())
    stage = json.loads((out / "stage.json").read_text())
    assert config["model_type"] == arch and stage["arch"] == arch
    pairs = {"nsp_accuracy", "sop_accuracy"} & set(m["heldout"])
    assert pairs == ({pair} if pair else set())
    if arch == "albert":
        assert config["embedding_size"] == 128 and stage["objective"] == "sop"
    task = write_csv(tmp_path / "t.csv", sentiment_rows(40))
    code, output = run_cli("finetune", "--model", out, "--task", task, "--kind",
                           "classification", "--max-steps", "2", "--threads", "1",
                           "--out", tmp_path / "ft")
    assert code == 0, output


def test_whole_word_masking_refuses_a_bpe_tokenizer(tmp_path):
    from helpers import run_cli

    corpus = write_corpus(tmp_path / "c.txt", docs=20)
    run_cli("tokenizer", "train", "--corpus", corpus, "--vocab-size", "300", "--kind", "bpe",
            "--out", tmp_path / "tok")
    code, output = run_cli("pretrain", "--corpus", corpus, "--tokenizer", tmp_path / "tok",
                           "--arch", "roberta", "--whole-word", "--out", tmp_path / "p")
    assert code == 2 and "--whole-word" in output and "BPE tokenizer" in output, output


@pytest.mark.parametrize("arch", ["bert", "roberta", "albert"])
def test_masked_only_heads_give_the_library_models_loss(arch):
    """MaskedPretrainer runs the MLM head on the labelled positions alone: its loss must be
    the one transformers' own forward computes over every position (MLM + NSP / SOP)."""
    import transformers

    from edgebert.stages.pretrain.stage import ARCHS, MaskedPretrainer

    config_name, model_name, pair = ARCHS[arch]
    config = getattr(transformers, config_name)(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, embedding_size=16,
        pad_token_id=0, type_vocab_size=1 if arch == "roberta" else 2)
    torch.manual_seed(0)
    model = getattr(transformers, model_name)(config).eval()
    ids = torch.randint(5, 99, (3, 20))
    labels = torch.where(torch.rand(ids.shape) < 0.3, ids, -100)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "token_type_ids": torch.zeros_like(ids), "labels": labels}
    key = {"nsp": "next_sentence_label", "sop": "sentence_order_label"}.get(pair)
    if key:
        batch[key] = torch.tensor([0, 1, 1])
    with torch.no_grad():
        ours = MaskedPretrainer(model)(**batch)["loss"]
        theirs = model(**batch).loss
    assert torch.allclose(ours, theirs, atol=1e-5), (float(ours), float(theirs))


def test_dictionary_documents_lead_with_their_headword(tmp_path):
    """GCIDE entries become documents whose first sentence names the word defined: MLM
    then learns a word from its definition (the headword line itself, with its
    pronunciation, is dropped)."""
    import gzip

    from edgebert.stages.pretrain.corpus import _gcide

    src = tmp_path / "usr/share/dictd/gcide.dict.dz"
    src.parent.mkdir(parents=True)
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write("licence text\n Begin file 1 of 26: Letter A\n\n"
                 "Abandon \\A*ban\"don\\, v. t. [1913 Webster]\n"
                 "1. To give up wholly; to desert.\n\nSee Forsake.\n"
                 "Lanky \\Lank\"y\\, a.\n"
                 "Somewhat lank; tall, thin, bony and ungraceful.\n"
                 "Cob \\Cob\\, n.\n"
                 "A male swan. A round, thick heap or lump.\n")
    docs = list(_gcide(tmp_path, held_out=set()))
    assert docs == [["Abandon: To give up wholly; to desert."],
                    ["Lanky: Somewhat lank; tall, thin, bony and ungraceful."],
                    ["Cob: A male swan.", "A round, thick heap or lump."]]
    # a sentence holding a wordnet-mc dev/test gloss is dropped (GCIDE copied WordNet's)
    docs = list(_gcide(tmp_path, held_out={"tall, thin, bony and ungraceful", "a male swan"}))
    assert docs == [["Abandon: To give up wholly; to desert."],
                    ["Cob: A round, thick heap or lump."]]


def test_pretraining_gains_are_scored_with_their_standard_error():
    """benchmarks/pretrain_cpu.py's verdicts: accuracy from per-text correctness, NER's entity
    F1 from per-sentence [right, found, wanted] counts, each with a paired SE that grows
    with the seeds' spread; a gain is called only beyond two SEs."""
    from helpers import load_benchmark

    bench = load_benchmark("pretrain_cpu")

    # 200 sentences of one entity each: 120 found by both arms, 40 more by the pretrained
    a = [[[1, 1, 1]] * 160 + [[0, 0, 1]] * 40]
    b = [[[1, 1, 1]] * 120 + [[0, 0, 1]] * 80]
    g = bench.entity_gain_with_se(a, b)
    # F1 = 2 right / (found + wanted): 320 / 360 and 240 / 320
    assert g["gain"] == pytest.approx(320 / 360 - 240 / 320)
    assert 0.01 < g["se_test"] < 0.05 and g["se_seeds"] == 0 and g["beyond_two_se"]
    # the same sentences, the gain spread over two seeds, one of them nil: less certain
    g2 = bench.entity_gain_with_se(a + b, b + b)
    assert g2["gain"] < g["gain"] and g2["se_seeds"] > 0 and g2["se"] > g2["se_test"]
    same = bench.entity_gain_with_se(b, b)
    assert same["gain"] == 0 and not same["beyond_two_se"]
    acc = bench.gain_with_se([[1] * 90 + [0] * 10], [[1] * 80 + [0] * 20])
    assert acc["gain"] == pytest.approx(0.1) and acc["se_test"] == pytest.approx(0.3 / 10, rel=0.01)
