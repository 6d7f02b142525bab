"""When to poll each feed next: adaptive to its publishing rate, polite, and never giving up.

Pure functions over a feed's state and the outcome of one poll (``now`` is a parameter), so the
rules are tested as such and the warehouse only stores the result (``feeds.next_poll_at``).

* **Rate.** Each successful poll updates an exponentially weighted estimate of new items per
  hour (``rate = a * new / hours_since_last_poll + (1 - a) * rate``), starting from the rate
  that ``initial`` stands for (``target / initial``): one empty poll, a 304, moves a new feed's
  interval from 15 to 21 minutes, not to the ceiling (it did, issue 21). The interval aims at
  ``target_new_per_poll`` new items per poll (``interval = target / rate``), bounded by
  ``floor`` and ``ceiling``. A quiet feed's rate decays with every empty poll, so its interval
  grows by about 1.4x per poll up to the ceiling; a busy feed is polled down to the floor.
* **Overflow.** When every entry of a poll was new, items may have been missed between polls:
  the interval is halved (down to the floor).
* **The feed's own word.** Never sooner than the feed's ``<ttl>``, its ``Cache-Control: max-age``
  or a ``Retry-After``, up to ``max_backoff`` (a day): no hint parks a feed for longer; a
  configured ``poll_interval_minutes`` replaces the adaptive interval.
  A 304 Not Modified is a successful poll with nothing new.
* **Failures** back off exponentially with the error streak: transient ones (timeouts, DNS,
  refused or broken connections, 5xx, 429) from ``soft_backoff``, permanent-looking ones (404,
  "not a feed", too large, bad URL, blocked address) from ``hard_backoff``, both capped at
  ``max_backoff`` so that a feed is retried at least that often and is never silently dropped.
* **Immediate subscriptions.** While one exists, ``serve`` lowers the ceiling to
  ``NEWSMON_IMMEDIATE_POLL_INTERVAL`` (2 minutes) for every feed, whatever its history
  (:meth:`ScheduleRules.of`); a feed's own TTL, max-age or Retry-After still wins.
* **Jitter** of +/- ``jitter`` (a share of the delay) spreads polls of feeds added together.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsmon.core.settings import Settings
from newsmon.extractors.reasons import RETRYABLE

SOFT_FAILURES: frozenset[str] = frozenset(r.value for r in RETRYABLE) | {"http_429"}


@dataclass(frozen=True)
class ScheduleRules:
    floor: timedelta = timedelta(minutes=2)
    ceiling: timedelta = timedelta(hours=6)
    initial: timedelta = timedelta(minutes=15)  # a new feed, before any rate is known
    target_new_per_poll: float = 1.0
    smoothing: float = 0.3  # weight of the latest poll in the rate estimate
    soft_backoff: timedelta = timedelta(minutes=5)
    hard_backoff: timedelta = timedelta(hours=1)
    max_backoff: timedelta = timedelta(hours=24)
    jitter: float = 0.1

    @classmethod
    def of(cls, settings: Settings, ceiling_s: float | None = None) -> ScheduleRules:
        """The polling rules ``settings`` describe; ``ceiling_s`` lowers the ceiling (and the
        floor and the first interval with it) for feeds that serve immediate subscriptions."""
        ceiling = max(settings.poll_max_interval_s, settings.poll_min_interval_s)
        if ceiling_s is not None:
            ceiling = min(ceiling, ceiling_s)
        return cls(
            floor=timedelta(seconds=min(settings.poll_min_interval_s, ceiling)),
            ceiling=timedelta(seconds=ceiling),
            initial=timedelta(seconds=min(settings.poll_initial_interval_s, ceiling)),
        )

    @property
    def prior_rate(self) -> float:
        """The items per hour a feed is assumed to publish before its first measurement: the
        rate at which ``initial`` would be the right interval."""
        return self.target_new_per_poll / max(self.initial.total_seconds() / 3600, 1e-9)


@dataclass(frozen=True)
class FeedSchedule:
    """What the warehouse keeps per feed for scheduling."""

    rate_per_hour: float | None = None  # None: not measured yet
    last_polled_at: datetime | None = None
    error_streak: int = 0


@dataclass(frozen=True)
class PollOutcome:
    """What one poll of one feed gave, as far as scheduling cares."""

    polled_at: datetime
    ok: bool  # ok or not modified
    entries: int = 0  # entries in the feed
    new: int = 0  # of them, not seen before
    reason: str | None = None  # when not ok
    http_status: int | None = None
    ttl_minutes: int | None = None  # RSS <ttl>
    max_age_s: float | None = None  # Cache-Control: max-age
    retry_after_s: float | None = None  # Retry-After on 429/503
    configured_minutes: int | None = None  # poll_interval_minutes in feeds.toml


@dataclass(frozen=True)
class NextPoll:
    at: datetime
    interval: timedelta  # the delay chosen, before jitter
    rate_per_hour: float | None
    error_streak: int
    why: str  # "rate", "overflow", "configured", "ttl", "max-age", "retry-after", "backoff"


def update_rate(
    rate: float | None,
    new: int,
    hours: float | None,
    smoothing: float,
    prior: float | None = None,
) -> float | None:
    """The new items-per-hour estimate after a successful poll; with no estimate yet, the
    first measurement is weighed against ``prior`` (when given) as a later one would be."""
    if hours is None or hours <= 0:
        return rate  # first poll: nothing to measure against yet
    observed = new / hours
    start = rate if rate is not None else prior
    return observed if start is None else smoothing * observed + (1 - smoothing) * start


def adaptive_interval(rate: float | None, rules: ScheduleRules) -> timedelta:
    """``target / rate``, bounded by the floor and the ceiling."""
    if rate is None:
        return rules.initial
    if rate <= 0:
        return rules.ceiling
    wanted = timedelta(hours=rules.target_new_per_poll / rate)
    return min(rules.ceiling, max(rules.floor, wanted))


def failure_backoff(
    reason: str | None, http_status: int | None, streak: int, rules: ScheduleRules
) -> timedelta:
    """Exponential in the error streak (1, 2, 4, ... times the base), capped at max_backoff."""
    soft = (reason in SOFT_FAILURES) or http_status == 429
    base = rules.soft_backoff if soft else rules.hard_backoff
    factor: int = 2 ** max(0, min(streak, 30) - 1)
    return min(rules.max_backoff, base * factor)


def next_poll(
    state: FeedSchedule,
    outcome: PollOutcome,
    rules: ScheduleRules = ScheduleRules(),
    rand: Callable[[], float] = random.random,
) -> NextPoll:
    """When to poll a feed next, after ``outcome``; ``rand`` in [0, 1) draws the jitter."""
    if not outcome.ok:
        streak = state.error_streak + 1
        delay = failure_backoff(outcome.reason, outcome.http_status, streak, rules)
        delay, why = _respect_hints(delay, "backoff", outcome, rules.max_backoff)
        return _at(outcome.polled_at, delay, state.rate_per_hour, streak, why, rules, rand)
    hours = (
        (outcome.polled_at - state.last_polled_at).total_seconds() / 3600
        if state.last_polled_at
        else None
    )
    rate = update_rate(state.rate_per_hour, outcome.new, hours, rules.smoothing, rules.prior_rate)
    if outcome.configured_minutes:
        delay, why = timedelta(minutes=outcome.configured_minutes), "configured"
    else:
        delay, why = adaptive_interval(rate, rules), "rate"
        if outcome.entries and outcome.new >= outcome.entries and state.last_polled_at:
            delay, why = max(rules.floor, delay / 2), "overflow"
    delay, why = _respect_hints(delay, why, outcome, rules.max_backoff)
    return _at(outcome.polled_at, delay, rate, 0, why, rules, rand)


def _respect_hints(
    delay: timedelta, why: str, outcome: PollOutcome, longest: timedelta
) -> tuple[timedelta, str]:
    """Never sooner than the feed asks (TTL, Cache-Control max-age, Retry-After), and never
    later than ``longest`` for it: a max-age of 10^400 seconds or a Retry-After in the year
    9999 would otherwise overflow the date or park the feed for good (issue 21)."""
    hints = [
        (_seconds(outcome.ttl_minutes * 60.0), "ttl") if outcome.ttl_minutes else None,
        (_seconds(outcome.max_age_s), "max-age") if outcome.max_age_s else None,
        (_seconds(outcome.retry_after_s), "retry-after") if outcome.retry_after_s else None,
    ]
    for hint in hints:
        if hint is not None and hint[0] > delay:
            delay, why = min(hint[0], max(longest, delay)), hint[1]
    return delay, why


def _seconds(value: float) -> timedelta:
    """A hint in seconds as a delay, whatever its size (a year at most; ``inf`` too)."""
    return timedelta(seconds=min(value, 366 * 86_400.0))


def _at(
    polled_at: datetime,
    delay: timedelta,
    rate: float | None,
    streak: int,
    why: str,
    rules: ScheduleRules,
    rand: Callable[[], float],
) -> NextPoll:
    spread = delay * rules.jitter * (2 * rand() - 1)
    return NextPoll(polled_at + delay + spread, delay, rate, streak, why)


def is_due(next_poll_at: datetime | None, now: datetime) -> bool:
    """A feed never polled, or whose next poll time has come."""
    return next_poll_at is None or next_poll_at <= now


__all__ = [
    "FeedSchedule",
    "NextPoll",
    "PollOutcome",
    "ScheduleRules",
    "adaptive_interval",
    "failure_backoff",
    "is_due",
    "next_poll",
    "update_rate",
]
