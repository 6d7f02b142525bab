"""Topic scoring throughput on one core: documents per second, and how the cost grows.

Usage: python benchmarks/scoring.py [--docs N] [--words W] [--model-docs M] [--rescore R]

Scores N generated articles of about W words (default 10,000 x 800) with the keyword and entity
filter of the shipped ``config/topics.toml`` in this one process, then checks the two claims of
docs/topics.md:

* cost grows linearly with text length (per-document time at 200 to 6,400 words, per word);
* cost does not grow with the number of terms per topic, beyond building the automaton (the
  same documents scored with 100, 1,000 and 10,000 extra terms in a query).

Then the relevance model (docs/topics.md, "The relevance model"), on one core
(``OMP_NUM_THREADS=1``, set before the encoder loads):

* the cost per article with the model: embedding the title and lead (M articles, default 300),
  then the model itself given the embedding;
* a rescore of R stored articles (default 10,000) in a real DuckDB warehouse, their embeddings
  stored (unit vectors drawn at random: what is measured is reading, scoring and writing, which
  do not depend on the vectors' values; ingest computes the real ones).

Times are CPU seconds of this process (``time.process_time``), so other load on the machine
distorts them less. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the encoder's threads: one core, as the rest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import text as gen  # noqa: E402
from newsmon.extractors.topics import Document, TopicSet, filter_documents, load_topics  # noqa: E402

TOPICS = ROOT / "config" / "topics.toml"


def documents(n: int, words: int, seed: int = 7) -> list[Document]:
    """``n`` articles, 30% on EU-NATO defence, of about ``words`` words each."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        relevant = rng.random() < 0.3
        body = "\n\n".join(gen.paragraphs(rng, relevant, words))
        out.append(Document(gen.title(rng, relevant), body))
    return out


def cpu_seconds(docs: list[Document], topics: TopicSet) -> float:
    start = time.process_time()
    filter_documents(docs, topics, use_models=False)
    return time.process_time() - start


def model_costs(docs: list[Document], topics: TopicSet) -> dict[str, float]:
    """Milliseconds per article: the encoder, then the model given the embedding."""
    from newsmon.extractors.embedding import embed, embed_text, load_encoder, text_key

    load_encoder()
    texts = [embed_text(d.title, d.text) for d in docs]
    start = time.perf_counter()
    vectors = embed(texts)
    embed_s = time.perf_counter() - start
    given = {i: (text_key(t), v) for i, (t, v) in enumerate(zip(texts, vectors, strict=True))}
    start = time.perf_counter()
    filter_documents(docs, topics, given)
    with_model = time.perf_counter() - start
    start = time.perf_counter()
    filter_documents(docs, topics, use_models=False)
    rules = time.perf_counter() - start
    n = len(docs)
    return {
        "embed_ms": round(embed_s / n * 1e3, 2),
        "rules_ms": round(rules / n * 1e3, 3),
        "model_given_embedding_ms": round(max(with_model - rules, 0.0) / n * 1e3, 3),
        "total_ms": round((embed_s + with_model) / n * 1e3, 2),
    }


def rescore_seconds(n: int, topics: TopicSet) -> dict[str, float]:
    """A rescore of ``n`` stored articles with stored embeddings, in a real warehouse."""
    import dataclasses
    from datetime import UTC, datetime

    import numpy as np

    from newsmon.extractors.embedding import ENCODER, embed_text, text_key
    from newsmon.extractors.pipeline import ArticleRecord
    from newsmon.warehouse.loads import EmbeddingRow, load_articles, store_embeddings
    from newsmon.warehouse.rescore import rescore
    from newsmon.warehouse.store import connect, transaction

    docs = documents(n, 300, seed=11)
    now = datetime.now(UTC)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "rescore.duckdb"
        base = ArticleRecord(
            article_id="", canonical_url="", url="", final_url=None, feed_id=None, guid=None,
            title=None, author=None, published_at=now, fetched_at=now, language="en",
            site_name=None, description=None, summary=None, text=None,
            extraction_status="extracted", extraction_reason=None, extraction_error=None,
            fetch_attempts=1, http_status=200, content_hash=None,
        )  # fmt: skip
        records = [
            dataclasses.replace(
                base, article_id=f"a{i}", canonical_url=f"https://x.example/{i}",
                url=f"https://x.example/{i}", title=d.title, text=d.text, content_hash=f"h{i}",
            )
            for i, d in enumerate(docs)
        ]  # fmt: skip
        vectors = rng.normal(size=(n, 384)).astype("<f4")
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = [
            EmbeddingRow(
                r.article_id, ENCODER, text_key(embed_text(d.title, d.text)), v.tobytes(), now
            )
            for r, d, v in zip(records, docs, vectors, strict=True)
        ]
        with connect(db) as con:
            for i in range(0, n, 2000):
                load_articles(con, records[i : i + 2000])
            with transaction(con):
                store_embeddings(con, rows)
            start = time.perf_counter()
            cpu = time.process_time()
            summary = rescore(con, topics)
            wall = time.perf_counter() - start
            cpu = time.process_time() - cpu
        assert summary.articles == n
    return {"articles": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def with_extra_terms(n: int, tmp: Path) -> tuple[TopicSet, float]:
    """The shipped topics plus a query of ``n`` made-up terms that never occur; build time."""
    text = TOPICS.read_text(encoding="utf-8")
    if n:
        terms = " OR ".join(f"zzterm{i:05d}" for i in range(n))
        text += f"\n[topics.eu_nato_defence.queries.padding]\nweight = 0.1\nquery = '''{terms}'''\n"
    text = text.replace(
        'examples = "../warehouse/baseline"', f'examples = "{ROOT}/warehouse/baseline"'
    ).replace('model = "models/', f'model = "{ROOT}/config/models/')
    path = tmp / f"topics-{n}.toml"
    path.write_text(text, encoding="utf-8")
    start = time.process_time()
    topics = load_topics(path)
    return topics, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=800)
    parser.add_argument("--model-docs", type=int, default=300)
    parser.add_argument("--rescore", type=int, default=10_000)
    args = parser.parse_args()

    topics = load_topics(TOPICS)
    docs = documents(args.docs, args.words)
    mean_words = sum(len(d.text.split()) for d in docs) / len(docs)
    total = cpu_seconds(docs, topics)
    print(f"scoring {args.docs} documents of {mean_words:.0f} words: {total:.2f} s CPU, "
          f"{args.docs / total:.0f} docs/s, {total / args.docs * 1e3:.3f} ms/doc")  # fmt: skip

    print("\nlength   ms/doc   us/word")
    by_length = {}
    by_length_words: list[float] = []
    by_length_secs: dict[float, float] = {}
    for words in (200, 800, 3200, 6400):
        sample = documents(300, words, seed=words)
        secs = cpu_seconds(sample, topics) / len(sample)
        actual = sum(len(d.text.split()) for d in sample) / len(sample)
        by_length[words] = round(secs / actual * 1e6, 3)
        by_length_words.append(actual)
        by_length_secs[actual] = secs
        print(f"{words:>6} {secs * 1e3:>8.3f} {secs / actual * 1e6:>9.3f}")

    # least-squares line through (words, seconds): a fixed cost per document plus a cost per word
    xs, ys = list(by_length_words), [by_length_secs[w] for w in by_length_words]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    fixed = my - slope * mx
    print(f"fit: {fixed * 1e3:.3f} ms per document + {slope * 1e6:.3f} us per word")

    import tempfile

    print("\nextra terms   build s   ms/doc")
    sample = docs[:1000]
    by_terms = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (0, 100, 1000, 10_000):
            padded, build = with_extra_terms(n, Path(tmp))
            secs = cpu_seconds(sample, padded) / len(sample)
            by_terms[n] = {"build_s": round(build, 3), "ms_per_doc": round(secs * 1e3, 3)}
            print(f"{n:>11} {build:>9.3f} {secs * 1e3:>8.3f}")

    print("\nrelevance model, one core, ms per article")
    model = model_costs(documents(args.model_docs, args.words, seed=3), topics)
    for k, v in model.items():
        print(f"  {k:<26}{v:>8}")
    print(f"\nrescore of {args.rescore} stored articles (embeddings stored)")
    rescored = rescore_seconds(args.rescore, topics)
    print(f"  {rescored['wall_s']} s ({rescored['cpu_s']} s CPU)")

    print(
        json.dumps(
            {
                "model_ms_per_article": model,
                "rescore": rescored,
                "docs": args.docs,
                "words_per_doc": round(mean_words),
                "cpu_s": round(total, 3),
                "docs_per_s": round(args.docs / total, 1),
                "us_per_word_by_length": by_length,
                "fixed_ms_per_doc": round(fixed * 1e3, 3),
                "us_per_word": round(slope * 1e6, 3),
                "by_extra_terms": by_terms,
            }
        )
    )


if __name__ == "__main__":
    main()
