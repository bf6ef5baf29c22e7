"""The tokenizer inside the ONNX file: the same ids as `tokenizers`, the same predictions
as the model fed by Python, for every task kind the runtime serves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import finetune, ner_conll, run_cli, sentiment_rows, write_csv
from tokenizers import Tokenizer

from edgebert.formats import session
from edgebert.runtime import load, text_feed
from edgebert.stages.export import text_graph

EDGE_CASES = [
    "a good movie", "Café naïve RÉSUMÉ", "Ångström Ærø façade", "日本語 and 東京 film",
    "emoji 😀 ok 🙂", "ctrl\x07char\x1b\x7f", "tab\there\nnew\rline", "", "   ",
    "nul\x00inside", "\ufffdbad", "İstanbul", "zero\u200bwidth", "soft\u00adhyphen",
    "ＦＵＬＬ width", "it's — “quoted” … !?", "the " * 300, "Āb Ŝtory ǅ", "Ελληνικά", "한국어",
    "أهلا", "private\ue000use", "line\u2028sep", "bom\ufeffhere", "del\x7fete", "ﬁne",
]
PAIRS = [("a good movie", "the plot was dull"), ("good " * 40, "bad " * 40),
         ("fine", "awful " * 80), ("story " * 70, "actor"), ("", ""), ("é 東", "🙂")]


def reference(tokenizer_json: Path, max_length: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.enable_truncation(max_length)
    return tok


def graph_ids(model, text: str, pair: str | None = None) -> list[int]:
    sess = session(model.SerializeToString(), custom_ops=True)
    return sess.run(None, text_feed(text, pair))[0].tolist()


def test_tokenizer_graph_matches_tokenizers_on_unicode_edge_cases(tiny_teacher):
    path = tiny_teacher / "tokenizer.json"
    tok = reference(path, 32)
    model = text_graph.tokenizer_model(path, "classification", 32)
    for text in EDGE_CASES:
        assert graph_ids(model, text) == tok.encode(text).ids, repr(text)
    assert len(graph_ids(model, "the " * 300)) == 32  # truncated to max_length


def test_every_code_point_alone_tokenizes_like_tokenizers(tiny_teacher):
    """Each character of the BMP between two words: the graph's normalisation table
    must reproduce BertNormalizer (accents of every script, removals, whitespace)."""
    import unicodedata

    path = tiny_teacher / "tokenizer.json"
    tok = reference(path, 32)
    sess = session(text_graph.tokenizer_model(path, "classification", 32).SerializeToString(),
                   custom_ops=True)
    differ = [hex(cp) for cp in range(1, 0x10000)
              if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) != "Cn"
              and sess.run(None, text_feed(f"a {chr(cp)} b"))[0].tolist()
              != tok.encode(f"a {chr(cp)} b".replace("\x00", "")).ids]
    assert differ == [], differ[:20]


def test_pairs_are_truncated_longest_first_like_tokenizers(tiny_teacher):
    path = tiny_teacher / "tokenizer.json"
    for max_length in (16, 17, 32):
        tok = reference(path, max_length)
        model = text_graph.tokenizer_model(path, "pair", max_length)
        sess = session(model.SerializeToString(), custom_ops=True)
        for a, b in PAIRS:
            want = tok.encode(a, b)
            assert sess.run(None, text_feed(a, b))[0].tolist() == want.ids, (max_length, a, b)


def test_a_word_the_vocabulary_cannot_spell_is_the_known_difference(tiny_teacher):
    """`tokenizers` turns a word it cannot split into one [UNK]; the op keeps the pieces it
    found, then [UNK]. Trim-vocab keeps every character's pieces so trimmed vocabularies
    never meet it on task text; where it happens the export's dev check refuses."""
    path = tiny_teacher / "tokenizer.json"
    model = text_graph.tokenizer_model(path, "classification", 32)
    tok = reference(path, 32)
    assert tok.encode("good😀").tokens == ["[CLS]", "[UNK]", "[SEP]"]
    assert graph_ids(model, "good😀") != tok.encode("good😀").ids


def test_other_tokenizers_are_refused_by_name(tmp_path, tiny_teacher):
    from edgebert.errors import UserError

    spec = json.loads((tiny_teacher / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "NFC"}
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(spec))
    with pytest.raises(UserError, match="BertNormalizer"):
        text_graph.tokenizer_model(bad, "classification", 32)


def test_int8_ort_with_tokenizer_is_checked_on_every_dev_example_and_bundles(tiny_teacher,
                                                                             tmp_path):
    q, ort_dir = tmp_path / "int8", tmp_path / "ort"
    code, out = run_cli("quantize", "--model", tiny_teacher, "--target", "x86-avx2",
                        "--max-drop", "100", "--out", q)
    assert code == 0, out
    code, out = run_cli("export", "--model", q, "--format", "ort", "--with-tokenizer",
                        "--out", ort_dir)
    assert code == 0, out
    m = json.loads((ort_dir / "metrics.json").read_text())
    parity = m["text_parity"]
    assert parity["token_id_mismatches"] == 0 and parity["prediction_mismatches"] == 0
    assert parity["examples"] == m["dev"]["examples"] > 0
    assert m["size_mb"] > m["size_without_tokenizer_mb"] > 0
    assert json.loads((ort_dir / "stage.json").read_text())["input"] == "text"
    ops = (ort_dir / "required_operators.config").read_text()
    assert "ai.onnx.contrib;1;BertTokenizer" in ops

    code, out = run_cli("bundle", "--model", ort_dir, "--out", tmp_path / "one-file")
    assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "one-file").iterdir()) == ["manifest.json",
                                                                         "model.ort"]
    code, out = run_cli("bundle", "--model", q, "--out", tmp_path / "ids")
    assert code == 0, out
    texts = [r["text"] for r in sentiment_rows(30, seed=5)] + EDGE_CASES
    one_file = load(tmp_path / "one-file").predict(texts)
    python_tokens = load(tmp_path / "ids", batch_size=1).predict(texts)  # batch 1 both
    assert [r["label"] for r in one_file] == [r["label"] for r in python_tokens]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(one_file, python_tokens)) < 1e-5


def test_ner_and_pair_models_take_strings(tiny_bert, tmp_path):
    ner = tmp_path / "ner"
    finetune(tiny_bert, ner_conll(tmp_path / "ner.txt"), ner, "--kind", "ner", "--epochs", "8")
    code, out = run_cli("export", "--model", ner, "--format", "onnx", "--with-tokenizer",
                        "--out", tmp_path / "ner-text")
    assert code == 0, out
    sess = session(tmp_path / "ner-text" / "model.onnx", custom_ops=True)
    tags, scores, offsets = sess.run(None, text_feed("john works at acme"))
    words = {"john works at acme"[a:b]: str(t) for t, (a, b) in zip(tags, offsets) if b > a}
    assert words["john"] == "B-person" and words["acme"] == "B-company"
    assert np.all((scores > 0) & (scores <= 1))

    rows = sentiment_rows(40)
    pairs = [{"text": r["text"], "text_pair": "the movie", "label": r["label"]} for r in rows]
    pair = tmp_path / "pair"
    finetune(tiny_bert, write_csv(tmp_path / "pairs.csv", pairs), pair, "--kind", "pair",
             "--max-steps", "10")
    code, out = run_cli("export", "--model", pair, "--format", "onnx", "--with-tokenizer",
                        "--out", tmp_path / "pair-text")
    assert code == 0, out
    parity = json.loads((tmp_path / "pair-text" / "metrics.json").read_text())["text_parity"]
    assert parity["token_id_mismatches"] == parity["prediction_mismatches"] == 0


def test_with_tokenizer_is_refused_for_torchscript(tiny_teacher, tmp_path):
    code, out = run_cli("export", "--model", tiny_teacher, "--format", "torchscript",
                        "--with-tokenizer", "--out", tmp_path / "ts")
    assert code == 2 and "--with-tokenizer" in out
    assert not (tmp_path / "ts").exists()
