"""How the commands print: tables (table, csv, json) and the summaries of runs, digests and
rescores. Terminal controls from feeds are replaced (:func:`printable`) in everything shown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from newsmon.cli.options import printable

if TYPE_CHECKING:
    from newsmon.flows.digest import DigestOutcome
    from newsmon.flows.ingest import RunSummary
    from newsmon.warehouse.rescore import RescoreSummary

# a cell of a result table: what DuckDB returns for the warehouse's column types
Cell = str | int | float | Decimal | bool | date | datetime | list[Any] | tuple[Any, ...] | None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def render(columns: Sequence[str], rows: Sequence[Sequence[Cell]], fmt: str = "table") -> str:
    """A result table as an aligned text table (cells cut at 60 characters), csv or json."""
    if fmt == "json":
        return json.dumps(
            [dict(zip(columns, map(_plain, r), strict=True)) for r in rows],
            ensure_ascii=False,
            indent=1,
        )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in r] for r in rows])
        return printable(buf.getvalue().rstrip("\n"))
    cells = [[cell(v) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    footer = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    return "\n".join([line.rstrip(), rule, *(b.rstrip() for b in body), footer])


def cell(value: Cell, limit: int = 60) -> str:
    """One value as a table shows it: on one line, printable, at most ``limit`` characters."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".") if "." in f"{value:.3f}" else str(value)
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    else:
        text = str(_plain(value))
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_summary(summary: RunSummary) -> str:
    out = io.StringIO()
    width = max((len(f.name) for f in summary.feeds), default=10)
    not_due = f" ({summary.feeds_not_due} not due yet)" if summary.feeds_not_due else ""
    out.write(f"Run {summary.run_id}: {len(summary.feeds)} feeds{not_due}\n")
    for f in summary.feeds:
        if f.status == "ok":
            detail = f"{f.entries} entries, {f.new} new"
        elif f.status == "not_modified":
            detail = "not modified (304)"
        else:
            code = f" HTTP {f.http_status}" if f.http_status else ""
            detail = f"{f.reason}{code}: {f.error or ''}".rstrip(": ")
        out.write(f"  {f.name:<{width}}  {f.status:<12}  {detail}\n")
    failed = summary.feeds_failed
    out.write(
        f"Articles: {summary.articles_new} new, {summary.articles_retried} retried, "
        f"{summary.articles_failed} page(s) failed (kept with the feed's title and summary)\n"
    )
    if summary.baseline_loaded:
        out.write(f"Baseline: {summary.baseline_loaded} article(s) loaded\n")
    out.write(f"Relevant: {len(summary.relevant)}\n")
    for a in summary.relevant[:25]:
        out.write(f"  {a.score:5.2f}  {a.title}\n")
    if len(summary.relevant) > 25:
        out.write(f"  ... and {len(summary.relevant) - 25} more (newsmon sql)\n")
    if failed:
        out.write(f"{failed} feed(s) failed; they are retried on the next run.\n")
    if summary.failing_for_a_day:
        out.write("Failing for a day or more (newsmon feeds check URL):\n")
        for name in summary.failing_for_a_day:
            out.write(f"  {name}\n")
    return printable(out.getvalue().rstrip("\n"))


def format_outcome(o: DigestOutcome) -> str:
    if o.status in ("sent", "dry_run"):
        what = f"{o.stories} stories ({o.articles} articles)"
        where = f" -> {', '.join(o.paths or (o.path,))}" if o.path else ""
        extra = f"; {o.error}" if o.error else ""
        return f"{o.subscription}: {o.status}, {what}{where}{extra}"
    if o.status == "failed":
        return f"{o.subscription}: FAILED ({o.reason}) {o.error}; the items are kept for next time"
    labels = {
        "empty": "nothing new",
        "not_due": "not due yet",
        "busy": "skipped: another digest of it is running",
        "paused": "paused (in the reading room's Alerts)",
    }
    if o.status == "invalid":
        return f"{o.subscription}: NOT SENT: {o.error}"
    if o.status == "empty" and o.reason:
        return f"{o.subscription}: nothing sent ({o.reason})"
    return f"{o.subscription}: {labels.get(o.status, o.status)}"


def format_rescore(summary: RescoreSummary) -> str:
    lines = [
        f"Rescored {summary.articles} articles: {summary.changed} changed relevance.",
        f"{'topic':<24}{'before':>8}{'after':>8}{'gained':>8}{'lost':>8}",
    ]
    for topic, c in sorted(summary.topics.items()):
        lines.append(
            f"{topic:<24}{c.relevant_before:>8}{c.relevant_after:>8}"
            f"{c.became_relevant:>8}{c.no_longer_relevant:>8}"
        )
    return "\n".join(lines)
