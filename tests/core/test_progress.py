"""Progress reports: plain lines off a terminal, a bar on one, nothing without a reporter."""

from __future__ import annotations

import io
import threading

from newsmon.core.progress import advance, reporting


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    with reporting("rescore: articles", out):
        advance(2, 5)
        advance(3, 5)
    assert out.getvalue().splitlines() == ["rescore: articles: 2/5", "rescore: articles: 5/5"]


def test_a_bar_on_a_terminal_updated_from_other_threads() -> None:
    out = FakeTerminal()
    with reporting("ingest: articles", out):
        threads = [threading.Thread(target=advance, args=(1, 4)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    shown = out.getvalue()
    assert "ingest: articles" in shown and "100%" in shown


def test_reports_without_a_reporter_are_ignored() -> None:
    advance(10, 20)  # nothing installed: no output, no error
