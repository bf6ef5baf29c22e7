"""One ONNX file that takes strings: the artifact's WordPiece tokenizer in front of
the model, softmax and label lookup behind it.

The tokenizer is onnxruntime-extensions' `BertTokenizer` op (domain
ai.onnx.contrib) configured from the artifact's own tokenizer.json, so an app
with ONNX Runtime (Mobile) and the extensions library needs no WordPiece code.

The op's own normalisation is not `tokenizers`' BertNormalizer: it strips
accents from Latin-1 only, keeps private-use and most format characters, and
knows no Hangul or Arabic decomposition (measured: 9,713 of the BMP's code points
tokenized differently). So the graph normalises first, as `tokenizers` does: the
text is split into characters (`StringRegexSplitWithOffsets`), each character that
the artifact's normaliser changes is mapped to its normal form (`StringMapping`,
a table built at export from the artifact's own tokenizer.json), and the pieces are
joined again. What is left is a word the vocabulary cannot spell ("good😀", rare
jamo): `tokenizers` gives one [UNK] for the word, the op the pieces it found and
then [UNK]. Trim-vocab keeps every character's pieces so task text never meets it,
and the export checks every dev example and refuses on any difference.
Pairs: the op leaves two long texts untruncated, so each text is tokenized on its
own and HF's LongestFirst rule is rebuilt from ONNX ops.
ONNX Runtime's string tensors end at NUL in every language binding: callers drop
NUL (`edgebert.runtime` does), which is what `tokenizers`' clean_text does too.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from edgebert.errors import UserError
from edgebert.kinds import KINDS
from edgebert.kinds import kind as task_kind

CONTRIB = "ai.onnx.contrib"
DROPPED = "\x07"  # what a removed character maps to: a control the op itself drops
CODE_POINTS = 0x30000  # the BMP and the two planes after it (beyond: unassigned, private)
OUTPUTS = {"labels": ("label", "score", "scores"), "value": ("value",),
           "tags": ("tags", "tag_scores", "offsets")}
"""Outputs of each kind of post-processing (`Kind.text_graph`)."""


def settings(tokenizer_json: Path) -> dict:
    """The BertTokenizer op's attributes from a `tokenizers` tokenizer.json, refusing
    what the op cannot reproduce (another model type, normaliser or pre-tokenizer).
    Read once per file (and modification time): an export builds the graph twice, the
    merged model and the tokenizer alone for its check, and the table takes a second."""
    path = Path(tokenizer_json)
    return _settings(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _settings(tokenizer_json: str, _mtime_ns: int) -> dict:
    spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    model, norm = spec.get("model") or {}, spec.get("normalizer") or {}
    where = f"{tokenizer_json}"
    if model.get("type") != "WordPiece":
        raise UserError(f"{where}: a {model.get('type')} tokenizer; only WordPiece (BERT) "
                        f"tokenizers go into the graph")
    if norm.get("type") != "BertNormalizer" or not norm.get("clean_text", True):
        raise UserError(f"{where}: normaliser {norm.get('type')} (clean_text "
                        f"{norm.get('clean_text')}); the graph reproduces BertNormalizer with "
                        f"clean_text only")
    if (spec.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer":
        raise UserError(f"{where}: pre-tokenizer is not BertPreTokenizer")
    if model.get("max_input_chars_per_word", 100) != 100:
        raise UserError(f"{where}: max_input_chars_per_word must be 100 (fixed in the op)")
    vocab = model.get("vocab") or {}
    tokens = sorted(vocab, key=vocab.get)
    if [vocab[t] for t in tokens] != list(range(len(tokens))):
        raise UserError(f"{where}: vocabulary ids are not 0..{len(tokens) - 1}")
    if any("\n" in t or "\r" in t for t in tokens):
        raise UserError(f"{where}: a vocabulary token holds a line break")
    for special in ("[CLS]", "[SEP]", model.get("unk_token", "[UNK]")):
        if special not in vocab:
            raise UserError(f"{where}: no {special} token in the vocabulary")
    lower = bool(norm.get("lowercase", True))
    strip = lower if norm.get("strip_accents") is None else bool(norm["strip_accents"])
    return {"attrs": {"vocab_file": "\n".join(tokens), "do_lower_case": int(lower),
                      "strip_accents": int(strip),
                      "tokenize_chinese_chars": int(norm.get("handle_chinese_chars", True)),
                      "unk_token": model.get("unk_token", "[UNK]"),
                      "suffix_indicator": model.get("continuing_subword_prefix", "##")},
            "char_map": char_map(tokenizer_json),
            "cls": vocab["[CLS]"], "sep": vocab["[SEP]"]}


def char_map(tokenizer_json: Path) -> str:
    """StringMapping's table ("char<TAB>normal form" lines): every character that the
    artifact's normaliser changes. CJK characters it only pads with spaces are left to the
    op; characters it removes map to a control character the op drops; tab, newline and
    carriage return stay (whitespace to both, and they would break the table's lines)."""
    from tokenizers import Tokenizer

    norm = Tokenizer.from_file(str(tokenizer_json)).normalizer
    lines = []
    for cp in range(1, CODE_POINTS):
        c = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or c in "\t\n\r":
            continue
        n = norm.normalize_str(c) if norm else c
        if len(n.strip()) == 1 and n.strip() != n:
            n = n.strip()  # a CJK character padded with spaces: the op isolates CJK itself
        if n != c:
            lines.append(f"{c}\t{n or DROPPED}")
    return "\n".join(lines)


class _Builder:
    """Nodes with unique `text/...` names, appended in order."""

    def __init__(self):
        self.nodes, self.count = [], 0

    def name(self) -> str:
        self.count += 1
        return f"text/{self.count}"

    def const(self, values, dtype=np.int64) -> str:
        from onnx import helper, numpy_helper

        out = self.name()
        arr = np.array(values, dtype=object if dtype is str else dtype)
        self.nodes.append(helper.make_node("Constant", [], [out],
                                           value=numpy_helper.from_array(arr, out)))
        return out

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1,
           domain: str = "", **attrs):
        from onnx import helper

        names = outputs if isinstance(outputs, list) else [self.name() for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, domain=domain, **attrs))
        return names[0] if len(names) == 1 else names


def _tokenize(b: _Builder, text: str, tok: dict, max_length: int) -> list[str]:
    """ids, type ids, mask and offsets of one string, [CLS] and [SEP] included: the text
    normalised character by character, then the op."""
    one_char = b.const(["(.)"], str)  # RE2, UTF-8: one code point, kept as its own piece
    chars = b.op("StringRegexSplitWithOffsets", [text, one_char, one_char], 4,
                 domain=CONTRIB)[0]
    normal = b.op("StringMapping", [chars], domain=CONTRIB, map=tok["char_map"])
    joined = b.op("StringJoin", [normal, b.const([""], str), b.const([0])], domain=CONTRIB)
    return b.op("BertTokenizer", [b.op("Reshape", [joined, b.const([1])])], 4, domain=CONTRIB,
                max_length=max_length, **tok["attrs"])


def _tokenize_pair(b: _Builder, first: str, second: str, tok: dict, max_length: int):
    """HF's LongestFirst truncation of two texts to `max_length` tokens in all (tokenizers'
    `truncate_encodings`): with s <= l the two lengths, l keeps max(s, budget - s); if
    both are still too long, the first keeps budget // 2 and the second the rest."""
    one, two = (b.op("Slice", [_tokenize(b, t, tok, -1)[0], b.const([1]), b.const([-1])])
                for t in (first, second))  # without [CLS] / [SEP]
    a, c = b.op("Shape", [one]), b.op("Shape", [two])
    budget = b.const([max_length - 3])
    short = b.op("Min", [a, c])  # the longer one keeps max(short, budget - short)
    keep_long = b.op("Where", [b.op("Greater", [short, budget]), short,
                               b.op("Max", [short, b.op("Sub", [budget, short])])])
    over = b.op("Greater", [b.op("Add", [short, keep_long]), budget])
    half = b.op("Div", [budget, b.const([2])])
    keep_short = b.op("Where", [over, half, short])
    keep_long = b.op("Where", [over, b.op("Sub", [budget, half]), keep_long])
    swapped = b.op("Greater", [a, c])
    keep_a = b.op("Min", [a, b.op("Where", [swapped, keep_long, keep_short])])
    keep_c = b.op("Min", [c, b.op("Where", [swapped, keep_short, keep_long])])
    one, two = b.op("Slice", [one, b.const([0]), keep_a]), b.op("Slice", [two, b.const([0]), keep_c])
    ids = b.op("Concat", [b.const([tok["cls"]]), one, b.const([tok["sep"]]), two,
                          b.const([tok["sep"]])], axis=0)
    from onnx import TensorProto, helper

    def filled(length: str, value: int) -> str:
        return b.op("ConstantOfShape", [length],
                    value=helper.make_tensor("v", TensorProto.INT64, [1], [value]))

    types = b.op("Concat", [filled(b.op("Add", [keep_a, b.const([2])]), 0),
                            filled(b.op("Add", [keep_c, b.const([1])]), 1)], axis=0)
    mask = filled(b.op("Shape", [ids]), 1)
    return ids, types, mask


def _front(b: _Builder, kind: str, tok: dict, max_length: int):
    """Graph inputs and the tokenizer nodes; returns (inputs, ids, types, mask, offsets)."""
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("text", TensorProto.STRING, [1])]
    if "text_pair" in task_kind(kind).roles:
        inputs.append(helper.make_tensor_value_info("text_pair", TensorProto.STRING, [1]))
        ids, types, mask = _tokenize_pair(b, "text", "text_pair", tok, max_length)
        return inputs, ids, types, mask, None
    ids, types, mask, offsets = _tokenize(b, "text", tok, max_length)
    return inputs, ids, types, mask, offsets


def tokenizer_model(tokenizer_json: Path, kind: str, max_length: int, opset: int = 17):
    """The tokenizer part alone (string in, `input_ids` out): what the export checks
    against `tokenizers`, built by the same code as the merged model."""
    from onnx import TensorProto, helper

    b = _Builder()
    inputs, ids, *_ = _front(b, kind, settings(tokenizer_json), max_length)
    b.op("Identity", [ids], ["input_ids"])
    graph = helper.make_graph(b.nodes, "tokenizer", inputs,
                              [helper.make_tensor_value_info("input_ids", TensorProto.INT64,
                                                             [None])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                   helper.make_opsetid(CONTRIB, 1)])


def merge(model_path: Path, tokenizer_json: Path, kind: str, labels: list[str],
          max_length: int):
    """`model_path` (ids in, logits out) with the tokenizer in front and, after it:
    classification / pair: `label` [1], `score` [1], `scores` [1, labels];
    regression: `value` [1]; ner: `tags`, `tag_scores` [tokens], `offsets` [tokens, 2]
    (character offsets into the text; [CLS] and [SEP] have (0, 0))."""
    import onnx
    from onnx import TensorProto, helper

    style = task_kind(kind).text_graph
    if style is None:
        served = ", ".join(k.name for k in KINDS.values() if k.text_graph)
        raise UserError(f"--with-tokenizer serves {served} models, not {kind}")
    model = onnx.load(str(model_path))
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise UserError(f"{model_path}: opset {opset}; the tokenizer graph needs opset 13 or "
                        f"later (export with --opset 17)")
    taken = {v for n in g.node for v in [*n.input, *n.output]} | {i.name for i in g.initializer}
    clash = taken & {"text", "text_pair", *OUTPUTS[style]}
    if clash:
        raise UserError(f"{model_path}: already has tensors named {sorted(clash)}")
    b = _Builder()
    inputs, ids, types, mask, offsets = _front(b, kind, settings(tokenizer_json), max_length)
    batch_axis = b.const([0])
    feeds = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    for i in g.input:
        if i.name not in feeds:
            raise UserError(f"{model_path}: input {i.name!r} is not one a tokenizer feeds")
        b.op("Unsqueeze", [feeds[i.name], batch_axis], [i.name])
    front = list(b.nodes)
    b.nodes = []
    logits = g.output[0].name
    n_labels = len(labels)
    if style == "value":
        b.op("Reshape", [logits, b.const([1])], ["value"])
        outs = [("value", TensorProto.FLOAT, [1])]
    else:
        names = b.const(labels, str)
        probs = b.op("Softmax", [logits], axis=-1)
        top, idx = b.op("TopK", [probs, b.const([1])], 2, axis=-1)
        flat = b.const([-1])
        if style == "tags":
            b.op("Gather", [names, b.op("Reshape", [idx, flat])], ["tags"], axis=0)
            b.op("Reshape", [top, flat], ["tag_scores"])
            b.op("Identity", [offsets], ["offsets"])
            outs = [("tags", TensorProto.STRING, [None]), ("tag_scores", TensorProto.FLOAT, [None]),
                    ("offsets", TensorProto.INT64, [None, 2])]
        else:
            b.op("Gather", [names, b.op("Reshape", [idx, flat])], ["label"], axis=0)
            b.op("Reshape", [top, flat], ["score"])
            b.op("Identity", [probs], ["scores"])
            outs = [("label", TensorProto.STRING, [1]), ("score", TensorProto.FLOAT, [1]),
                    ("scores", TensorProto.FLOAT, [1, n_labels])]
    nodes = front + list(g.node) + b.nodes
    del g.node[:]
    g.node.extend(nodes)
    del g.input[:]
    g.input.extend(inputs)
    del g.output[:]
    g.output.extend(helper.make_tensor_value_info(n, t, s) for n, t, s in outs)
    model.opset_import.append(helper.make_opsetid(CONTRIB, 1))
    model.doc_string = (f"edgebert: text in, {', '.join(OUTPUTS[style])} out; tokenizer from "
                        f"onnxruntime-extensions (register its custom-op library to load)")
    return model

