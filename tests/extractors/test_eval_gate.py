"""Quality gate: the shipped topic's relevance model may not regress.

The model is trained on every shared labelled item (items.jsonl included), so the figures that
say how it does on news it has not seen are the cross-validated ones: the gate refits the model
on the training set stored in the artifact, with the same folds, and checks them (about 2 s; no
text is embedded again). The items.jsonl and dev-set gates below are kept as regression checks.
Raise the pins when the model improves; never lower them silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.extractors.evaluate import EvalDataError, evaluate_file, read_labelled
from newsmon.extractors.topics import TopicSet, load_topics
from tests.paths import CORPUS, ROOT

LABELLED = CORPUS / "labelled" / "items.jsonl"

MIN_PRECISION = 0.91
MIN_RECALL = 0.86
MIN_BY_KIND = {"feed_summary": (0.87, 0.84), "full_text": (0.99, 0.91)}

# cross-validated (5 folds, seed 0) on the 905 shared labelled items, as `newsmon train` prints
# them. Achieved when pinned: F1 0.841 (precision 0.848, recall 0.833), 0.928 on the items not
# borderline, English 0.834, Polish 0.845 (docs/topics.md has the full table).
CV_MIN = {"cv_f1": 0.835, "cv_f1_not_borderline": 0.92, "en": 0.83, "pl": 0.84}


def test_cross_validated_figures_of_the_shipped_model() -> None:
    from newsmon.extractors.relevance import load_model
    from newsmon.extractors.training import fit, items_from_model

    path = ROOT / "config" / "models" / "eu_nato_defence.npz"
    model = load_model(path)
    items = items_from_model(model)
    assert len(items) == 905 and sum(i.label for i in items) == 234
    _, report = fit(items, "eu_nato_defence", model.language_basis)
    s = report.summary()
    figures = {
        "cv_f1": s["cv_f1"],
        "cv_f1_not_borderline": s["cv_f1_not_borderline"],
        "en": s["by_language"]["en"]["f1"],
        "pl": s["by_language"]["pl"]["f1"],
    }
    assert all(figures[k] >= v for k, v in CV_MIN.items()), figures
    # the artifact's own figures are the ones this refit reproduces
    assert model.metrics["cv_f1"] == s["cv_f1"], (model.metrics["cv_f1"], s["cv_f1"])
    assert model.threshold == report.threshold


@pytest.fixture(scope="module")
def topics() -> TopicSet:
    return load_topics(ROOT / "config" / "topics.toml")


def test_gate_on_labelled_set(topics: TopicSet) -> None:
    report = evaluate_file(LABELLED, topics)
    s = report.summary()
    assert s["tp"] + s["fp"] + s["fn"] + s["tn"] == 157
    assert s["tp"] + s["fn"] == 38
    assert report.precision >= MIN_PRECISION, report.summary()
    assert report.recall >= MIN_RECALL, report.summary()
    for kind, (p, r) in MIN_BY_KIND.items():
        k = report.by_kind[kind]
        assert k.precision >= p and k.recall >= r, (kind, k.summary())
    assert len(report.errors) == s["fp"] + s["fn"]
    assert all(e.explanation["evidence"] is not None for e in report.errors)


def test_counts_on_a_small_file(tmp_path: Path, topics: TopicSet) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        "\n".join(
            [
                '{"id": "a", "title": "NATO boosts eastern flank", "text": "Troops deploy.",'
                ' "label": 1, "text_kind": "feed_summary"}',
                '{"id": "b", "title": "Newcastle defender injured", "text": "Football.",'
                ' "label": 0, "text_kind": "feed_summary"}',
                '{"id": "c", "title": "Cat show", "text": "Cats.", "label": 1}',
                "",
                '{"id": "d", "title": "NATO summit gaffe", "text": "Defence ministers laughed.",'
                ' "label": 0}',
            ]
        ),
        encoding="utf-8",
    )
    report = evaluate_file(path, topics)
    assert report.summary() == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "tp": 1,
        "fp": 1,
        "fn": 1,
        "tn": 1,
    }
    assert report.by_kind["feed_summary"].summary()["tp"] == 1
    assert report.by_kind["unknown"].summary()["fn"] == 1
    assert sorted((e.id, e.kind) for e in report.errors) == [
        ("c", "false_negative"),
        ("d", "false_positive"),
    ]


@pytest.mark.parametrize(
    ("line", "key", "problem"),
    [
        ("{not json", "line 2", "not valid JSON"),
        ("[1, 2]", "line 2", "must be a JSON object"),
        ('{"title": "t", "label": 1}', "line 2: text", "must be a string, got None"),
        ('{"title": "t", "text": "", "label": 2}', "line 2: label", "must be 0 or 1, got 2"),
        ('{"title": "t", "text": "", "label": true}', "line 2: label", "must be 0 or 1"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, key: str, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"title": "ok", "text": "", "label": 0}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(EvalDataError) as info:
        read_labelled(path)
    assert info.value.source == str(path)
    assert info.value.key == key
    assert problem in info.value.problem


# --- our own multilingual dev set -------------------------------------------------------------

DEV = ROOT / "tests" / "data" / "topics_dev.jsonl"


def test_gate_on_our_multilingual_dev_set(topics: TopicSet) -> None:
    """Items we wrote ourselves (English, French, German; positives and hard negatives), kept
    apart from the third-party labelled set. Achieved when pinned: 14 tp, 0 fp, 0 fn, 13 tn."""
    report = evaluate_file(DEV, topics)
    assert report.tp + report.fn == 14
    assert report.precision >= 0.93 and report.recall >= 0.93, report.summary()


DEV_MORE = ROOT / "tests" / "data" / "topics_dev_more.jsonl"


def test_gate_on_our_seven_language_dev_set(topics: TopicSet) -> None:
    """84 items we wrote in Italian, Spanish, Dutch, Polish, French, German and Portuguese (6
    relevant, 6 hard negatives each), never trained on. Achieved when pinned: precision 1.0,
    recall 0.929 (tp 39, fp 0, fn 3, tn 42)."""
    report = evaluate_file(DEV_MORE, topics)
    assert report.tp + report.fn == 42
    assert report.precision >= 0.97 and report.recall >= 0.9, report.summary()


def test_dev_set_languages_are_detected() -> None:
    import json

    from newsmon.extractors.language import detect_language

    for line in [
        *DEV.read_text(encoding="utf-8").splitlines(),
        *DEV_MORE.read_text(encoding="utf-8").splitlines(),
    ]:
        item = json.loads(line)
        assert detect_language(f"{item['title']}\n{item['text']}") == item["lang"], item["id"]
