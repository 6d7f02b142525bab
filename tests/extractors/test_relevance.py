"""The relevance model: the shipped artifact, analysts' labels, training and rescoring with them,
over a real warehouse and the real encoder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from newsmon.cli import cli
from newsmon.core.errors import ConfigError
from newsmon.core.settings import DEFAULT_CONFIG_DIR
from newsmon.extractors.pipeline import filter_articles
from newsmon.extractors.relevance import load_model
from newsmon.extractors.topics import Document, filter_documents, load_topics
from newsmon.warehouse import loads
from newsmon.warehouse.baseline import ensure_baseline
from newsmon.warehouse.store import connect
from tests.helpers import record
from tests.paths import topics_copy

TOPIC = "eu_nato_defence"
TOPICS_FILE = DEFAULT_CONFIG_DIR / "topics.toml"
MODEL = DEFAULT_CONFIG_DIR / "models" / "eu_nato_defence.npz"

# Battlefield reports: not relevant under the rubric, so the shipped model rejects them; an
# analyst who follows the front line teaches it otherwise.
FRONT = [
    ("Ukrainian troops retake village near Bakhmut", "Fighting continued along the front line."),
    ("Russian forces shell Kharkiv suburbs overnight", "Artillery hit residential blocks."),
    ("Ukraine says it pushed Russian units back near Kupiansk", "Heavy fighting in the east."),
    ("Russian assault on Avdiivka repelled, Kyiv says", "Dozens of attacks along the front."),
    ("Ukrainian artillery strikes Russian positions near Robotyne", "Front line battles go on."),
    ("Russian troops advance near Pokrovsk, Ukraine's army says", "Fierce fighting in Donetsk."),
]
OTHER = [
    ("Tram line opens in Riga", "Commuters welcomed the new route."),
    ("Cat show in Paris", "Cats of every breed were judged on Sunday."),
]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="newsmon")
    return result.exit_code, result.output


def topics_with_model(tmp_path: Path, model: Path) -> Path:
    """The shipped topics file, copied beside a model of our own."""
    return topics_copy(
        tmp_path / "topics.toml",
        {'model = "models/eu_nato_defence.npz"': f'model = "{model.as_posix()}"'},
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    db = tmp_path / "w.duckdb"
    topics = load_topics(TOPICS_FILE)
    ensure_baseline(db, topics)
    articles = [*FRONT, *OTHER]
    records = filter_articles(
        [record(i, text, title=title) for i, (title, text) in enumerate(articles)], topics
    )
    with connect(db) as con:
        loads.load_articles(con, records)
    return db


def ids_by_title(db: Path) -> dict[str, str]:
    with connect(db, read_only=True) as con:
        return dict(con.execute("SELECT title, article_id FROM articles").fetchall())


def verdicts(db: Path) -> dict[str, tuple[bool, str | None, float]]:
    with connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT a.title, m.relevant, m.model_version, m.score FROM article_matches m "
            "JOIN articles a USING (article_id) WHERE m.topic = ?",
            [TOPIC],
        ).fetchall()
    return {t: (rel, version, score) for t, rel, version, score in rows}


def test_the_shipped_model_is_small_versioned_and_finds_the_baseline() -> None:
    assert MODEL.stat().st_size < 50e6
    model = load_model(MODEL)
    assert model.topic == TOPIC and model.version.startswith(f"{TOPIC}@")
    assert 0.05 < model.threshold < 0.95
    assert model.metrics["items"] == len(model.examples) >= 905
    topics = load_topics(TOPICS_FILE)
    baseline = sorted((DEFAULT_CONFIG_DIR.parent / "warehouse" / "baseline").glob("*.txt"))
    docs = [Document(*p.read_text(encoding="utf-8").split("\n", 1)) for p in baseline]
    for result in filter_documents(docs, topics):
        match = result.match(TOPIC)
        assert match.relevant, match.explanation
        assert match.explanation["model"]["version"] == model.version
        assert result.vector is not None and result.vector.shape == (384,)


def test_explanations_name_the_evidence_and_the_closest_examples() -> None:
    topics = load_topics(TOPICS_FILE)
    doc = Document(
        "NATO boosts air defence on the eastern flank",
        "Allies send Patriot batteries to Poland after Russian drones crossed its airspace.",
    )
    match = filter_documents([doc], topics)[0].match(TOPIC)
    model = match.explanation["model"]
    assert match.relevant and match.score > 0.8
    assert "text" in model["contributions"] and "entity:nato" in model["contributions"]
    assert model["contributions"]["entity:nato"] > 0
    assert len(model["nearest"]) == 3 and model["nearest"][0]["similarity"] > 0.8
    from newsmon.extractors.topics import describe

    line = describe(match)
    assert line.startswith("relevant: score") and "closest example" in line


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("Die NATO verstärkt ihre Ostflanke", "Die Allianz verlegt weitere Soldaten nach Litauen."),
        ("L'UE finance des munitions pour l'Ukraine", "Les Vingt-Sept s'accordent sur un fonds."),
        ("La Spagna aumenta la spesa per la difesa", "Il governo approva nuovi carri armati."),
        ("Polska kupuje kolejne czołgi K2", "MON podpisało umowę na dostawy dla wojska."),
    ],
)
def test_news_in_other_languages_reads_as_relevant(title: str, text: str) -> None:
    match = filter_documents([Document(title, text)], load_topics(TOPICS_FILE))[0].match(TOPIC)
    assert match.relevant, match.explanation


def test_a_bad_model_file_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a model")
    with pytest.raises(ConfigError) as info:
        load_topics(topics_with_model(tmp_path, broken))
    assert info.value.key == "topics.eu_nato_defence.model"
    assert "not a newsmon model file" in info.value.problem and "newsmon train" in info.value.fix
    with pytest.raises(ConfigError, match="no such model file"):
        load_topics(topics_with_model(tmp_path, tmp_path / "missing.npz"))


def test_label_train_rescore_changes_similar_articles(
    warehouse: Path, tmp_path: Path, prefect_server: None
) -> None:
    ids = ids_by_title(warehouse)
    before = verdicts(warehouse)
    assert not any(before[t][0] for t, _ in FRONT)  # the rubric: battlefield news is not relevant
    shipped = load_model(MODEL).version
    assert all(version == shipped for _, version, _ in before.values())

    taught, held_out = FRONT[:4], FRONT[4:]
    for title, _ in taught:
        code, out = run("label", "--db", str(warehouse), ids[title][:8], "relevant", "--by", "ana")
        assert code == 0, out
        assert f"labelled {ids[title]} relevant for {TOPIC} (by ana)" in out
    code, out = run("label", "--db", str(warehouse), ids["Cat show in Paris"], "not-relevant")
    assert code == 0, out

    code, out = run("eval", "--db", str(warehouse))
    assert code == 0, out
    assert json.loads(out.splitlines()[-1])["fn"] == 4  # the shipped model missed all four

    model = tmp_path / "mine.npz"
    shutil.copy(MODEL, model)
    topics = topics_with_model(tmp_path, model)
    code, out = run("train", "--topics", str(topics), "--db", str(warehouse))
    assert code == 0, out
    assert "5 analysts' labels" in out
    summary = json.loads(out.splitlines()[-1])
    assert summary["by_source"]["analyst"]["n"] == 5
    assert {"cv_precision", "cv_recall", "cv_f1", "by_language"} <= summary.keys()
    mine = load_model(model)
    assert mine.version == summary["model_version"] != shipped

    with connect(warehouse, read_only=True) as con:
        embedded = con.execute("SELECT article_id, embedded_at FROM article_embeddings").fetchall()
    code, out = run("rescore", "--db", str(warehouse), "--topics", str(topics))
    assert code == 0, out
    after = verdicts(warehouse)
    assert all(version == mine.version for _, version, _ in after.values())
    # never labelled, but like the ones that were: far likelier now, and relevant once likely
    for title, _ in held_out:
        assert after[title][2] > before[title][2] + 0.2, (title, before[title], after[title])
    assert after[held_out[0][0]][0] is True
    for title, _ in OTHER:
        assert after[title][0] is False, title
    with connect(warehouse, read_only=True) as con:
        # the rescore read the stored embeddings: none was computed (and stored) again
        again = con.execute("SELECT article_id, embedded_at FROM article_embeddings").fetchall()
    assert len(embedded) == 11 and sorted(again) == sorted(embedded)


def test_label_refuses_an_unknown_article_or_topic(warehouse: Path) -> None:
    code, out = run("label", "--db", str(warehouse), "nosuchid0000", "relevant")
    assert code == 2 and out.count("\n") == 1, out
    assert "no article with id 'nosuchid0000'" in out
    code, out = run("label", "--db", str(warehouse), "--topic", "eu_nato_defense", "x", "relevant")
    assert code == 2 and "did you mean 'eu_nato_defence'?" in out, out
    with connect(warehouse, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM labels").fetchone() == (0,)


def test_stored_embeddings_are_the_encoders(warehouse: Path) -> None:
    from newsmon.extractors.embedding import embed, embed_text

    title, text = FRONT[0]
    with connect(warehouse, read_only=True) as con:
        (blob,) = con.execute(
            "SELECT vector FROM article_embeddings JOIN articles USING (article_id) "
            "WHERE title = ?",
            [title],
        ).fetchone()
    stored = np.frombuffer(blob, dtype="<f4")
    assert np.allclose(stored, embed([embed_text(title, text)])[0], atol=1e-5)


def test_hard_include_and_exclude_queries_overrule_the_model(tmp_path: Path) -> None:
    text = topics_with_model(tmp_path, MODEL).read_text(encoding="utf-8")
    text = text.replace(
        "[topics.eu_nato_defence.entities]",
        "include = '\"Baltic Sentry\"'\nexclude = 'Greenland NEAR/5 tariff*'\n\n"
        "[topics.eu_nato_defence.entities]",
    )
    path = tmp_path / "hard.toml"
    path.write_text(text, encoding="utf-8")
    topics = load_topics(path)
    docs = [
        Document("NATO jets shadow Russian bombers over the Baltic", "Allies scrambled fighters."),
        Document("NATO jets over Greenland as tariff row grows", "Allies scrambled fighters."),
        Document("Baltic Sentry: the ferry timetable", "Ships leave every hour."),
    ]
    plain, excluded, included = (r.match(TOPIC) for r in filter_documents(docs, topics))
    assert plain.relevant and "forced" not in plain.explanation
    assert not excluded.relevant and excluded.explanation["forced"] == "exclude"
    assert included.relevant and included.explanation["forced"] == "include"
    from newsmon.extractors.topics import describe

    assert "(excluded by the topic's exclude query)" in describe(excluded)


def test_an_unknown_topic_is_an_error_with_a_suggestion(warehouse: Path) -> None:
    for args in (
        ["search", "--db", str(warehouse), "--topic", "eu_nato_defense", "NATO"],
        ["eval", "--db", str(warehouse), "--topic", "eu_nato_defense"],
        ["train", "--topic", "eu_nato_defense", "--no-labels", "--output", "x.npz"],
    ):
        code, out = run(*args)
        assert code == 2, (args, out)
        assert out.strip().endswith("no such topic. Fix: did you mean 'eu_nato_defence'?"), out


def test_train_and_eval_on_a_warehouse_without_labels(tmp_path: Path) -> None:
    import duckdb

    old = tmp_path / "old.duckdb"  # a warehouse from before the labels table
    duckdb.connect(str(old)).close()
    code, out = run("eval", "--db", str(old))
    assert code == 0 and out.startswith("0 labelled articles"), out
    model = tmp_path / "m.npz"
    code, out = run("train", "--db", str(old), "--output", str(model))
    assert code == 0 and "0 analysts' labels" in out and model.exists(), out
    code, out = run("train", "--db", str(tmp_path / "typo.duckdb"), "--output", str(model))
    assert code == 1 and "no warehouse at" in out, out


def test_train_from_the_stored_set_refuses_after_the_topic_changed(tmp_path: Path) -> None:
    """The stored training set holds the evidence of the topic as it was: after a query
    changes, refitting from it would mix old and new evidence, so train asks for --data."""
    model = tmp_path / "mine.npz"
    shutil.copy(MODEL, model)
    path = topics_with_model(tmp_path, model)
    assert load_topics(path).topic(TOPIC).fingerprint == load_model(model).topic_fingerprint
    text = path.read_text(encoding="utf-8").replace("weight = -0.7", "weight = -0.9", 1)
    path.write_text(text, encoding="utf-8")
    code, out = run("train", "--topics", str(path), "--no-labels")
    assert code == 2, out
    assert "queries or entities changed since the model was trained" in out
    assert "pass the labelled data again with --data FILE" in out
