"""Per-feed poll scheduling as pure functions: rates, bounds, the feed's hints, backoff, jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsmon.extractors.schedule import (
    FeedSchedule,
    PollOutcome,
    ScheduleRules,
    adaptive_interval,
    failure_backoff,
    is_due,
    next_poll,
    update_rate,
)

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RULES = ScheduleRules()


def no_jitter() -> float:
    return 0.5  # 2 * 0.5 - 1 = 0: no spread


def ok(minutes_later: float = 0, *, entries: int = 20, new: int = 0, **kw: object) -> PollOutcome:
    return PollOutcome(T0 + timedelta(minutes=minutes_later), True, entries, new, **kw)  # type: ignore[arg-type]


def test_rate_estimate_is_smoothed() -> None:
    assert update_rate(None, 5, None, 0.3) is None  # first poll: nothing to measure against
    assert update_rate(None, 6, 2.0, 0.3) == 3.0
    assert update_rate(3.0, 0, 1.0, 0.3) == pytest.approx(2.1)
    assert update_rate(2.0, 4, 0.0, 0.3) == 2.0  # no time passed: unchanged


def test_interval_aims_at_one_new_item_per_poll_within_bounds() -> None:
    assert adaptive_interval(None, RULES) == RULES.initial
    assert adaptive_interval(6.0, RULES) == timedelta(minutes=10)
    assert adaptive_interval(600.0, RULES) == RULES.floor  # busy: the floor
    assert adaptive_interval(0.01, RULES) == RULES.ceiling  # quiet: the ceiling
    assert adaptive_interval(0.0, RULES) == RULES.ceiling


def test_a_busy_feed_speeds_up_and_a_quiet_one_slows_down() -> None:
    state = FeedSchedule(rate_per_hour=2.0, last_polled_at=T0 - timedelta(minutes=30))
    busy = next_poll(state, ok(new=10), rand=no_jitter)
    assert busy.why == "rate" and busy.interval < timedelta(minutes=30)
    intervals = []
    state = FeedSchedule(rate_per_hour=2.0, last_polled_at=T0)
    at = T0
    for _ in range(12):  # nothing new, poll after poll
        at = at + timedelta(minutes=30)
        nxt = next_poll(state, PollOutcome(at, True, 20, 0), rand=no_jitter)
        intervals.append(nxt.interval)
        state = FeedSchedule(nxt.rate_per_hour, at, 0)
    assert intervals == sorted(intervals)  # grows monotonically ...
    assert intervals[-1] == RULES.ceiling  # ... up to the ceiling
    assert intervals[1] / intervals[0] == pytest.approx(1 / 0.7, rel=0.01)


def test_all_entries_new_means_items_may_be_missed_poll_sooner() -> None:
    state = FeedSchedule(rate_per_hour=6.0, last_polled_at=T0 - timedelta(minutes=10))
    nxt = next_poll(state, ok(entries=20, new=20), rand=no_jitter)
    assert nxt.why == "overflow" and nxt.interval >= RULES.floor
    calm = next_poll(state, ok(entries=20, new=1), rand=no_jitter)
    assert nxt.interval < calm.interval


def test_the_feeds_own_hints_are_never_undercut() -> None:
    busy = FeedSchedule(rate_per_hour=60.0, last_polled_at=T0 - timedelta(minutes=2))
    assert next_poll(busy, ok(new=2, ttl_minutes=60), rand=no_jitter).interval == timedelta(hours=1)
    assert next_poll(busy, ok(new=2, ttl_minutes=60), rand=no_jitter).why == "ttl"
    cached = next_poll(busy, ok(new=2, max_age_s=900), rand=no_jitter)
    assert (cached.interval, cached.why) == (timedelta(minutes=15), "max-age")
    limited = next_poll(
        busy,
        PollOutcome(T0, False, reason="http_4xx", http_status=429, retry_after_s=7200),
        rand=no_jitter,
    )
    assert (limited.interval, limited.why) == (timedelta(hours=2), "retry-after")


def test_a_configured_interval_replaces_the_adaptive_one() -> None:
    state = FeedSchedule(rate_per_hour=60.0, last_polled_at=T0 - timedelta(minutes=5))
    nxt = next_poll(state, ok(new=5, configured_minutes=45), rand=no_jitter)
    assert (nxt.interval, nxt.why) == (timedelta(minutes=45), "configured")


def test_failures_back_off_softly_for_transient_and_hard_for_permanent() -> None:
    assert failure_backoff("timeout", None, 1, RULES) == timedelta(minutes=5)
    assert failure_backoff("http_5xx", 503, 3, RULES) == timedelta(minutes=20)
    assert failure_backoff("http_4xx", 429, 1, RULES) == timedelta(minutes=5)  # rate limited
    assert failure_backoff("http_4xx", 404, 1, RULES) == timedelta(hours=1)
    assert failure_backoff("not_a_feed", None, 2, RULES) == timedelta(hours=2)
    # capped: a feed failing for weeks is still tried every day, never dropped
    assert failure_backoff("http_4xx", 404, 40, RULES) == RULES.max_backoff
    assert failure_backoff("timeout", None, 40, RULES) == RULES.max_backoff


def test_failure_streaks_count_up_and_a_success_resets_them() -> None:
    state = FeedSchedule(rate_per_hour=1.0, last_polled_at=T0 - timedelta(hours=1), error_streak=2)
    failed = next_poll(state, PollOutcome(T0, False, reason="timeout"), rand=no_jitter)
    assert (failed.error_streak, failed.why) == (3, "backoff")
    assert failed.interval == timedelta(minutes=20)
    assert failed.rate_per_hour == 1.0  # a failure says nothing about the publishing rate
    recovered = next_poll(FeedSchedule(1.0, T0, 3), ok(60, new=1), rand=no_jitter)
    assert recovered.error_streak == 0 and recovered.why == "rate"


def test_jitter_spreads_within_the_share() -> None:
    state = FeedSchedule(rate_per_hour=6.0, last_polled_at=T0 - timedelta(minutes=10))
    early = next_poll(state, ok(new=1), rand=lambda: 0.0)
    late = next_poll(state, ok(new=1), rand=lambda: 0.999999)
    base = next_poll(state, ok(new=1), rand=no_jitter)
    spread = base.interval * RULES.jitter
    assert base.at - spread <= early.at < base.at < late.at <= base.at + spread


def test_due() -> None:
    assert is_due(None, T0)
    assert is_due(T0, T0) and not is_due(T0 + timedelta(seconds=1), T0)


def test_one_304_after_the_first_poll_does_not_park_a_feed_for_hours() -> None:
    """Issue 21: a new feed whose second poll was a 304 went to the 6-hour ceiling at once."""
    first = next_poll(FeedSchedule(), ok(entries=20, new=20), rand=no_jitter)
    assert first.interval == RULES.initial and first.rate_per_hour is None
    second = next_poll(FeedSchedule(None, T0, 0), ok(15, entries=0, new=0), rand=no_jitter)
    assert timedelta(minutes=15) < second.interval < timedelta(minutes=30), second
    assert second.rate_per_hour == pytest.approx(0.7 * 4.0)  # the prior (1 per 15 min), decayed


def test_an_immediate_subscription_caps_every_feed_at_its_interval() -> None:
    from newsmon.core.settings import Settings

    rules = ScheduleRules.of(Settings(), ceiling_s=120)
    assert rules.ceiling == rules.floor == rules.initial == timedelta(minutes=2)
    quiet = FeedSchedule(rate_per_hour=0.0, last_polled_at=T0 - timedelta(hours=5))
    assert next_poll(quiet, ok(), rules, rand=no_jitter).interval == timedelta(minutes=2)
    # the feed's own word still wins, and failures still back off
    assert next_poll(quiet, ok(ttl_minutes=60), rules).why == "ttl"
    assert next_poll(quiet, PollOutcome(T0, False, 0, 0, reason="timeout"), rules).interval > (
        timedelta(minutes=2)
    )
    assert ScheduleRules.of(Settings()).ceiling == timedelta(hours=6)  # no subscription: as before
