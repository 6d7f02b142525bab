"""A JSON Feed whose strings hold lone UTF-16 surrogates (``"\\ud800"``: legal JSON, not valid
Unicode). Python keeps them in ``str``, but nothing can encode them as UTF-8: before, the first
hash or DuckDB write of such a title failed the whole run, every run. They are stored as U+FFFD,
and the run (with every other hostile case in it) completes."""

from __future__ import annotations

import json

from tests.hostile.suite import HostileRun, page
from tests.httpserver import LoopbackHTTPServer


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Surrogates \ud800",
        "items": [
            {
                "id": "surrogate-\udc00",
                "url": server.url("/surrogate/a.html"),
                "title": "NATO drill \ud800 in the Baltic",
                "content_text": "Allied ships \udbff sail.",
            }
        ],
    }
    server.add("/surrogate/feed.json", json.dumps(feed), content_type="application/feed+json")
    server.add("/surrogate/a.html", page("Surrogate page"))
    return {"lone-surrogate": server.url("/surrogate/feed.json")}


def test_lone_surrogates_are_replaced_and_the_run_completes(hostile: HostileRun) -> None:
    assert len(hostile.summaries) == 2 and all(s.feeds for s in hostile.summaries)  # both ran
    assert hostile.feed("lone-surrogate")[:2] == ("ok", None)
    [(_, title, summary, status, *_)] = hostile.articles("lone-surrogate")
    assert (title, summary, status) == (
        "NATO drill \ufffd in the Baltic",
        "Allied ships \ufffd sail.",
        "extracted",
    )
