"""Topic scoring throughput on one core: documents per second, and how the cost grows.

Usage: python benchmarks/scoring.py [--docs N] [--words W]

Scores N generated articles of about W words (default 10,000 x 800) with the shipped
``config/topics.toml`` in this one process, then checks the two claims of docs/topics.md:

* cost grows linearly with text length (per-document time at 200 to 6,400 words, per word);
* cost does not grow with the number of terms per topic, beyond building the automaton (the
  same documents scored with 100, 1,000 and 10,000 extra terms in a query).

Times are CPU seconds of this process (``time.process_time``), so other load on the machine
distorts them less. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import text as gen  # noqa: E402
from extractors.topics import Document, TopicSet, filter_documents, load_topics  # noqa: E402

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
    filter_documents(docs, topics)
    return time.process_time() - start


def with_extra_terms(n: int, tmp: Path) -> tuple[TopicSet, float]:
    """The shipped topics plus a query of ``n`` made-up terms that never occur; build time."""
    text = TOPICS.read_text(encoding="utf-8")
    if n:
        terms = " OR ".join(f"zzterm{i:05d}" for i in range(n))
        text += f"\n[topics.eu_nato_defence.queries.padding]\nweight = 0.1\nquery = '''{terms}'''\n"
    text = text.replace(
        'examples = "../warehouse/baseline"', f'examples = "{ROOT}/warehouse/baseline"'
    )
    path = tmp / f"topics-{n}.toml"
    path.write_text(text, encoding="utf-8")
    start = time.process_time()
    topics = load_topics(path)
    return topics, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=800)
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

    print(
        json.dumps(
            {
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
