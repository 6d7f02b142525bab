"""Topic loading, validation, entities and scoring with the shipped config/topics.toml."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from newsmon.core.errors import ConfigError
from newsmon.extractors.topics import (
    Document,
    EntityHit,
    FilterResult,
    TopicSet,
    describe,
    filter_documents,
    load_topics,
)
from tests.paths import ROOT

TOPICS = ROOT / "config" / "topics.toml"
TOPIC = "eu_nato_defence"


@pytest.fixture(scope="module")
def topics() -> TopicSet:
    return load_topics(TOPICS)


def run(topics: TopicSet, title: str, text: str = "") -> FilterResult:
    """The keyword and entity filter alone (its evidence is what the model weighs)."""
    return filter_documents([Document(title, text)], topics, use_models=False)[0]


def entity_ids(result: FilterResult) -> list[str]:
    return [h.entity_id for h in result.entities]


def test_shipped_config_loads(topics: TopicSet) -> None:
    assert topics.names == (TOPIC,)
    ids = {e.id for e in topics.entities}
    assert {"nato", "eu", "org:eda", "programme:pesco", "programme:safe"} <= ids
    assert {"person:stoltenberg", "person:rutte", "person:von-der-leyen", "person:kallas"} <= ids
    assert topics.topic(TOPIC).threshold == 0.5


@pytest.mark.parametrize(
    "path", sorted((ROOT / "warehouse" / "baseline").glob("*.txt")), ids=lambda p: p.name
)
def test_baseline_articles_are_relevant(topics: TopicSet, path: Path) -> None:
    title, _, body = path.read_text(encoding="utf-8").partition("\n")
    assert run(topics, title, body).match(TOPIC).relevant  # by the keyword filter alone, too
    match = filter_documents([Document(title, body)], topics)[0].match(TOPIC)
    assert match.relevant, match.explanation
    assert match.score >= 0.7 and match.explanation["model"]["version"]


def test_three_baseline_files_exist() -> None:
    assert len(list((ROOT / "warehouse" / "baseline").glob("*.txt"))) == 3


@pytest.mark.parametrize(
    ("title", "aliases_found"),
    [
        ("OTAN : sommet à Vilnius", ["nato"]),
        ("Nordatlantikpakt stärkt Ostflanke", ["nato"]),
        ("Union européenne et défense", ["eu", "place:europe"]),
        ("Die Europäische Union rüstet auf", ["eu", "place:europe"]),
        ("L'UE et la Pologne", ["eu", "place:poland"]),
    ],
)
def test_multilingual_aliases(topics: TopicSet, title: str, aliases_found: list[str]) -> None:
    assert entity_ids(run(topics, title)) == aliases_found


def test_senator_and_renato_are_not_nato(topics: TopicSet) -> None:
    result = run(
        topics,
        "Senator Renato Smith wins gubernatorial primary",
        "The senator thanked donors.",
    )
    assert entity_ids(result) == []
    assert result.match(TOPIC).relevant is False
    assert result.match(TOPIC).score == 0.0


def test_eu_inside_words_and_lower_case(topics: TopicSet) -> None:
    assert entity_ids(run(topics, "Neutral museum opens", "eu sou feliz")) == []
    hits = run(topics, "The EU and Europe", "").entities
    assert hits == (
        EntityHit("eu", "European Union", "org", 1, 4, True),
        EntityHit("place:europe", "Europe", "place", 1, 11, True),
    )


def test_entity_hit_counts_and_positions(topics: TopicSet) -> None:
    result = run(topics, "Rutte in Brussels", "NATO chief Rutte met NATO ministers.")
    nato = next(h for h in result.entities if h.entity_id == "nato")
    rutte = next(h for h in result.entities if h.entity_id == "person:rutte")
    assert (nato.count, nato.first_pos, nato.in_title) == (2, 18, False)
    assert (rutte.count, rutte.first_pos, rutte.in_title, rutte.type) == (2, 0, True, "person")


def test_the_alliance_counts_only_with_nato(topics: TopicSet) -> None:
    alone = run(topics, "The alliance meets", "The alliance of shopkeepers met.")
    assert "nato" not in entity_ids(alone)
    with_nato = run(topics, "The alliance meets", "NATO said the alliance is strong.")
    nato = next(h for h in with_nato.entities if h.entity_id == "nato")
    assert (nato.count, nato.first_pos, nato.in_title) == (3, 0, True)


def test_the_alliance_counts_only_near_nato(topics: TopicSet) -> None:
    filler = " ".join(["word"] * 60)
    far = run(topics, "Summit", f"NATO met. {filler} The alliance of shopkeepers voted.")
    near = run(topics, "Summit", f"NATO met. {filler} NATO said the alliance voted.")
    count = {h.entity_id: h.count for h in far.entities}
    assert count["nato"] == 1  # 60 words away: outside the 40-word context window
    assert {h.entity_id: h.count for h in near.entities}["nato"] == 3


def test_required_groups_need_a_concept_and_a_european_actor(topics: TopicSet) -> None:
    canada = run(topics, "Canada's defence minister resigns", "The armed forces chief too.")
    match = canada.match(TOPIC)
    assert match.relevant is False
    assert len(match.explanation["required_missing"]) == 1  # no European actor
    assert "nato" in match.explanation["required_missing"][0]
    germany = run(topics, "Germany's defence minister resigns", "The armed forces chief too.")
    assert germany.match(TOPIC).explanation["required_missing"] == []


def test_required_concept_deep_in_a_long_body_is_a_passing_mention(topics: TopicSet) -> None:
    filler = " ".join(["Markets rallied as traders bought shares."] * 20)
    deep = run(topics, "Stocks rally in Europe", f"{filler} NATO defence spending was noted.")
    lead = run(topics, "Stocks rally in Europe", f"NATO defence spending was noted. {filler}")
    assert deep.match(TOPIC).explanation["required_met"] is False
    assert lead.match(TOPIC).explanation["required_met"] is True
    assert deep.match(TOPIC).score < lead.match(TOPIC).score


def test_similarity_to_the_baseline_is_evidence(topics: TopicSet) -> None:
    text = (
        "NATO Secretary General said the European Union defence push need not duplicate the "
        "alliance, as EU defence ministers discussed cooperation with NATO allies on Russia."
    )
    match = run(topics, "NATO and EU defence cooperation", text).match(TOPIC)
    sim = next(e for e in match.explanation["evidence"] if e["kind"] == "similarity")
    assert sim["similarity"] > 0.2 and sim["contribution"] > 0
    unrelated = run(topics, "Cat show", "Cats and dogs were judged by a panel.").match(TOPIC)
    assert all(
        e["kind"] != "similarity" or e["contribution"] == 0
        for e in unrelated.explanation["evidence"]
    )


def test_describe_is_a_readable_line(topics: TopicSet) -> None:
    match = run(topics, "NATO defence spending rises", "Allies agree in Brussels.").match(TOPIC)
    line = describe(match)
    assert line.startswith("relevant: score ")
    assert "NATO [org] in title" in line
    assert '"defence spending"' in line


def test_safe_acronym_needs_the_eu(topics: TopicSet) -> None:
    assert "programme:safe" not in entity_ids(run(topics, "Is it SAFE to travel?"))
    assert "programme:safe" in entity_ids(run(topics, "EU approves SAFE loans for defence"))


@pytest.mark.parametrize(
    "title,text",
    [
        ("Newcastle defender fractures foot", "The defender will miss the match."),
        ("Fury's title defence set for April", "The boxing champion will defend his title."),
        ("France breach Dutch defense to end quarterfinal curse", "Women's Euro football."),
        ("The Age of Defensive Democracy", "Courts defend democracy."),
        ("Biden will rescind Afghanistan's designation as a major non-NATO ally", ""),
        ("EU fines Google over adtech", "The European Commission imposed fines under EU rules."),
        ("Defence lawyer appeals ruling", "The defense attorney said the court erred."),
    ],
)
def test_hard_negatives_are_not_relevant(topics: TopicSet, title: str, text: str) -> None:
    assert run(topics, title, text).match(TOPIC).relevant is False


@pytest.mark.parametrize(
    "title,text",
    [
        (
            "NATO scrambles fighter jets to intercept Russian planes",
            "Air policing over the Baltic.",
        ),
        ("EU agrees on European Defence Fund boost", "Defence ministers back PESCO projects."),
        ("Germany raises defence spending", "The Bundeswehr gets a special fund."),
        ("OTAN : renforcement du flanc est", "L'OTAN déploie des troupes en Pologne."),
    ],
)
def test_clear_positives_are_relevant(topics: TopicSet, title: str, text: str) -> None:
    assert run(topics, title, text).match(TOPIC).relevant is True


def test_title_weighs_more_than_body(topics: TopicSet) -> None:
    title = run(topics, "NATO", "The meeting went on.").match(TOPIC)
    body = run(topics, "The meeting", "NATO went on.").match(TOPIC)
    nato = {e["name"]: e for e in title.explanation["evidence"]}["nato"]
    assert nato["contribution"] == 4.0  # weight 2.0 * title_weight 2.0
    assert body.score < title.score
    assert title.relevant is False  # a bare mention of NATO is not a story about NATO


def test_explanation_is_json_and_names_evidence(topics: TopicSet) -> None:
    match = run(topics, "NATO defence spending rises", "Allies agree.").match(TOPIC)
    explanation = json.loads(json.dumps(match.explanation))
    assert explanation["required_met"] is True
    by_name = {e["name"]: e for e in explanation["evidence"]}
    assert by_name["nato"]["in_title"] is True
    assert by_name["nato"]["contribution"] == 4.0
    assert by_name["defence_core"]["terms"] == ['"defence spending"']
    assert by_name["defence_core"]["contribution"] == 3.0
    assert 0.0 <= match.score <= 1.0


def test_missing_required_evidence_halves_the_score(topics: TopicSet) -> None:
    match = run(topics, "EU and Ukraine talk", "The European Union met Ukraine.").match(TOPIC)
    assert match.explanation["required_met"] is False
    assert match.relevant is False


def test_topicset_pickles(topics: TopicSet) -> None:
    clone = pickle.loads(pickle.dumps(topics))
    doc = Document("NATO summit", "Allies agreed on deterrence.")
    assert filter_documents([doc], clone) == filter_documents([doc], topics)


def test_one_result_per_document_in_order(topics: TopicSet) -> None:
    docs = [
        Document("NATO summit", "Allies agree on deterrence."),
        Document("Cat show", ""),
        Document("", ""),
    ]
    results = filter_documents(docs, topics)
    assert [r.match(TOPIC).relevant for r in results] == [True, False, False]
    assert all(len(r.matches) == 1 for r in results)


# ----------------------------------------------------------------------------- validation

MINIMAL = """
version = 1
[[entities]]
id = "nato"
name = "NATO"
type = "org"
aliases = ["NATO"]
[topics.t]
threshold = {threshold}
[topics.t.entities]
nato = 1.0
[topics.t.queries.q]
query = '{query}'
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "topics.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_minimal_config(tmp_path: Path) -> None:
    ts = load_topics(write(tmp_path, MINIMAL.format(threshold=0.4, query="defence")))
    assert ts.names == ("t",)
    assert run(ts, "NATO defence").match("t").relevant is True


def test_bad_threshold(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.format(threshold="'x'", query="defence"))
    with pytest.raises(ConfigError) as info:
        load_topics(path)
    err = info.value
    assert (err.source, err.key) == (str(path), "topics.t.threshold")
    assert err.problem == "must be a number between 0 and 1, got 'x'"
    assert err.fix == "set threshold = 0.5"


def test_threshold_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"topics\.t\.threshold: must be a number between 0"):
        load_topics(write(tmp_path, MINIMAL.format(threshold=1.5, query="defence")))


def test_query_syntax_error_names_the_query(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_topics(write(tmp_path, MINIMAL.format(threshold=0.5, query="(defence")))
    assert info.value.key == "topics.t.queries.q.query"
    assert "position 8" in info.value.problem


def test_unknown_key_suggests_fix(tmp_path: Path) -> None:
    text = MINIMAL.format(threshold=0.5, query="x").replace("threshold =", "treshold =")
    with pytest.raises(ConfigError) as info:
        load_topics(write(tmp_path, text))
    assert info.value.key == "topics.t.treshold"
    assert "did you mean 'threshold'" in info.value.fix


def test_unknown_entity_weight(tmp_path: Path) -> None:
    text = MINIMAL.format(threshold=0.5, query="x").replace("nato = 1.0", "natto = 1.0")
    with pytest.raises(ConfigError) as info:
        load_topics(write(tmp_path, text))
    assert (info.value.key, info.value.fix) == ("topics.t.entities.natto", "use 'nato'")


def test_bad_entity_type_and_bad_toml(tmp_path: Path) -> None:
    text = MINIMAL.format(threshold=0.5, query="x").replace('type = "org"', 'type = "club"')
    with pytest.raises(ConfigError, match="must be one of org, person, programme, place"):
        load_topics(write(tmp_path, text))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_topics(write(tmp_path, "[topics\n"))
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_topics(tmp_path / "missing.toml")
