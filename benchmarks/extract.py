"""Article extraction throughput on the corpus pages: trafilatura alone vs newsmon's batch.

Usage: python benchmarks/extract.py [--repeat N]. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import trafilatura

from newsmon.extractors.articles import Page, extract_pages

PAGES = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "pages"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=4, help="times to repeat the page set")
    args = parser.parse_args()
    manifest = [json.loads(line) for line in (PAGES / "MANIFEST.jsonl").open(encoding="utf-8")]
    pages = [
        Page(m["url"], (PAGES / m["file"]).read_bytes(), "text/html") for m in manifest
    ] * args.repeat
    mb = sum(len(p.content) for p in pages) / 1e6

    warnings.simplefilter("ignore")
    t = time.perf_counter()
    for p in pages:
        trafilatura.extract(p.content, url=p.url, output_format="json", with_metadata=True)
    bound_1 = len(pages) / (time.perf_counter() - t)

    t = time.perf_counter()
    extract_pages(pages)
    ours_1 = len(pages) / (time.perf_counter() - t)

    with ProcessPoolExecutor(2, mp_context=get_context("forkserver")) as pool:
        extract_pages(pages[:16], pool)  # start the workers outside the timing
        t = time.perf_counter()
        extract_pages(pages, pool)
        ours_2 = len(pages) / (time.perf_counter() - t)

    print(f"{len(pages)} pages, {mb:.1f} MB of HTML")
    print(f"{'what':<40}{'pages/s':>10}")
    print(f"{'trafilatura.extract, 1 process':<40}{bound_1:>10.1f}")
    print(f"{'newsmon extract_pages, 1 process':<40}{ours_1:>10.1f}")
    print(f"{'newsmon extract_pages, 2 processes':<40}{ours_2:>10.1f}")
    print(
        json.dumps(
            {
                "pages": len(pages),
                "trafilatura_pages_per_s": round(bound_1, 1),
                "newsmon_1proc_pages_per_s": round(ours_1, 1),
                "newsmon_2proc_pages_per_s": round(ours_2, 1),
                "speedup_2proc": round(ours_2 / ours_1, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
