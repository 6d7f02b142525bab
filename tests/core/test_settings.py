"""Configuration: NEWSMON_* variables, feeds.toml and topics.toml, validated with clear messages."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from newsmon.core.errors import ConfigError
from newsmon.core.settings import DEFAULT_CONFIG_DIR, DEFAULT_DB, FeedConfig, Settings, load_feeds
from newsmon.extractors.topics import load_topics
from tests.paths import ROOT

# --- Settings.from_env ---------------------------------------------------------------------


def test_defaults_when_nothing_is_set() -> None:
    s = Settings.from_env({})
    assert s == Settings(
        db_path=DEFAULT_DB,
        feeds_path=DEFAULT_CONFIG_DIR / "feeds.toml",
        topics_path=DEFAULT_CONFIG_DIR / "topics.toml",
        http_timeout_s=10.0,
        http_deadline_s=30.0,
        http_max_bytes=10_000_000,
        http_concurrency=32,
        http_per_host=4,
        http_retries=2,
        user_agent="newsmon/0.1 (EU-NATO defence news monitor)",
        workers=max(1, os.cpu_count() or 1),
        batch_size=200,
        max_article_attempts=3,
        task_runner="local",
        dask_address="",
    )
    assert DEFAULT_CONFIG_DIR.resolve() == ROOT / "config"  # the package data, in a checkout
    assert Path("data/newsmon.duckdb") == DEFAULT_DB


def test_blank_values_mean_the_default() -> None:
    assert Settings.from_env({"NEWSMON_HTTP_TIMEOUT": "  ", "NEWSMON_DB": ""}) == Settings.from_env(
        {}
    )


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSMON_BATCH_SIZE", "7")
    assert Settings.from_env().batch_size == 7


def test_every_variable_is_read(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "NEWSMON_DB": str(tmp_path / "w.duckdb"),
            "NEWSMON_FEEDS": str(tmp_path / "f.toml"),
            "NEWSMON_TOPICS": str(tmp_path / "t.toml"),
            "NEWSMON_HTTP_TIMEOUT": "2.5",
            "NEWSMON_HTTP_DEADLINE": "7",
            "NEWSMON_HTTP_MAX_BYTES": "1234",
            "NEWSMON_HTTP_CONCURRENCY": "5",
            "NEWSMON_HTTP_PER_HOST": "1",
            "NEWSMON_HTTP_RETRIES": "0",
            "NEWSMON_USER_AGENT": " test-agent/1 ",
            "NEWSMON_WORKERS": "3",
            "NEWSMON_BATCH_SIZE": "50",
            "NEWSMON_MAX_ARTICLE_ATTEMPTS": "9",
            "NEWSMON_TASK_RUNNER": "Dask",
            "NEWSMON_DASK_ADDRESS": " tcp://10.0.0.7:8786 ",
        }
    )
    assert s == Settings(
        db_path=tmp_path / "w.duckdb",
        feeds_path=tmp_path / "f.toml",
        topics_path=tmp_path / "t.toml",
        http_timeout_s=2.5,
        http_deadline_s=7.0,
        http_max_bytes=1234,
        http_concurrency=5,
        http_per_host=1,
        http_retries=0,
        user_agent="test-agent/1",
        workers=3,
        batch_size=50,
        max_article_attempts=9,
        task_runner="dask",
        dask_address="tcp://10.0.0.7:8786",
    )
    assert isinstance(s.http_deadline_s, float) and isinstance(s.http_max_bytes, int)


def test_config_dir_moves_feeds_and_topics_unless_they_are_set(tmp_path: Path) -> None:
    s = Settings.from_env({"NEWSMON_CONFIG_DIR": str(tmp_path)})
    assert (s.feeds_path, s.topics_path) == (tmp_path / "feeds.toml", tmp_path / "topics.toml")
    s = Settings.from_env(
        {"NEWSMON_CONFIG_DIR": str(tmp_path), "NEWSMON_TOPICS": str(tmp_path / "x.toml")}
    )
    assert (s.feeds_path, s.topics_path) == (tmp_path / "feeds.toml", tmp_path / "x.toml")


def test_paths_expand_the_home_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.from_env({"NEWSMON_DB": "~/w.duckdb"}).db_path == tmp_path / "w.duckdb"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "NEWSMON_HTTP_TIMEOUT",
            "abc",
            "environment: NEWSMON_HTTP_TIMEOUT: must be a number greater than 0 and at most 3600, "
            "got 'abc'. "
            "Fix: set NEWSMON_HTTP_TIMEOUT=10.0 or unset it for the default",
        ),
        (
            "NEWSMON_HTTP_TIMEOUT",
            "0",
            "environment: NEWSMON_HTTP_TIMEOUT: must be a number greater than 0 and at most 3600, "
            "got '0'. "
            "Fix: set NEWSMON_HTTP_TIMEOUT=10.0 or unset it for the default",
        ),
        (
            "NEWSMON_HTTP_TIMEOUT",
            "nan",
            "environment: NEWSMON_HTTP_TIMEOUT: must be a number greater than 0 and at most 3600, "
            "got 'nan'. "
            "Fix: set NEWSMON_HTTP_TIMEOUT=10.0 or unset it for the default",
        ),
        (
            "NEWSMON_HTTP_DEADLINE",
            "-3",
            "environment: NEWSMON_HTTP_DEADLINE: must be a number greater than 0 and at most 3600, "
            "got '-3'. "
            "Fix: set NEWSMON_HTTP_DEADLINE=30.0 or unset it for the default",
        ),
        (
            "NEWSMON_HTTP_RETRIES",
            "-1",
            "environment: NEWSMON_HTTP_RETRIES: must be a whole number at least 0 and at most 10, "
            "got "
            "'-1'. "
            "Fix: set NEWSMON_HTTP_RETRIES=2 or unset it for the default",
        ),
        (
            "NEWSMON_WORKERS",
            "1.5",
            "environment: NEWSMON_WORKERS: must be a whole number greater than 0 and at most 256, "
            "got '1.5'. "
            f"Fix: set NEWSMON_WORKERS={max(1, os.cpu_count() or 1)} or unset it for the default",
        ),
        (
            "NEWSMON_TASK_RUNNER",
            "ray",
            "environment: NEWSMON_TASK_RUNNER: must be one of local, dask, got 'ray'. "
            "Fix: set NEWSMON_TASK_RUNNER=local or unset it for the default",
        ),
        (
            "NEWSMON_DASK_ADDRESS",
            "tcp://10.0.0.7:8786",
            "environment: NEWSMON_DASK_ADDRESS: is set but NEWSMON_TASK_RUNNER is not dask, so it "
            "would be ignored. Fix: set NEWSMON_TASK_RUNNER=dask to use the cluster, or unset "
            "NEWSMON_DASK_ADDRESS",
        ),
        (  # issue 21: extremes that overflowed a date or ran away
            "NEWSMON_POLL_MAX_INTERVAL",
            "1e300",
            "environment: NEWSMON_POLL_MAX_INTERVAL: must be a number greater than 0 and at most "
            "2592000, got '1e300'. Fix: set NEWSMON_POLL_MAX_INTERVAL=21600.0 or unset it for "
            "the default",
        ),
        (
            "NEWSMON_WORKERS",
            "100000",
            "environment: NEWSMON_WORKERS: must be a whole number greater than 0 and at most 256, "
            f"got '100000'. Fix: set NEWSMON_WORKERS={max(1, os.cpu_count() or 1)} or unset it "
            "for the default",
        ),
        (
            "NEWSMON_BATCH_SIZE",
            "0",
            "environment: NEWSMON_BATCH_SIZE: must be a whole number greater than 0 and at most "
            "100000, got '0'. "
            "Fix: set NEWSMON_BATCH_SIZE=200 or unset it for the default",
        ),
        (
            "NEWSMON_WEB_URL",
            "javascript:alert(1)",
            "environment: NEWSMON_WEB_URL: 'javascript:alert(1)' is not the http(s) address of "
            "the reading room. Fix: set NEWSMON_WEB_URL=https://newsmon.example.org (where "
            "`newsmon web` answers)",
        ),
    ],
)
def test_bad_values_name_the_variable_the_value_and_the_fix(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert str(info.value) == message
    assert (info.value.source, info.value.key) == ("environment", name)


def test_a_malformed_dask_address_names_the_variable_and_the_fix() -> None:
    env = {"NEWSMON_TASK_RUNNER": "dask", "NEWSMON_DASK_ADDRESS": "http://sched uler/"}
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert str(info.value) == (
        "environment: NEWSMON_DASK_ADDRESS: is not a Dask scheduler address, got "
        "'http://sched uler/'. Fix: set NEWSMON_DASK_ADDRESS=tcp://HOST:8786 (what `dask "
        "scheduler` prints), or unset it"
    )


def test_batches_go_to_dask_only_when_asked_and_then_no_local_pool_starts() -> None:
    assert Settings.from_env({"NEWSMON_WORKERS": "3"}).local_workers == 3
    on_dask = Settings.from_env({"NEWSMON_WORKERS": "3", "NEWSMON_TASK_RUNNER": "dask"})
    assert (on_dask.task_runner, on_dask.dask_address, on_dask.local_workers) == ("dask", "", 1)


def test_example_env_lists_exactly_the_variables_config_reads() -> None:
    source = (ROOT / "newsmon" / "core" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'"(NEWSMON_[A-Z_]+)"', source))
    documented = set(
        re.findall(
            r"^(NEWSMON_[A-Z_]+)=",
            (ROOT / "example.env").read_text(encoding="utf-8"),
            flags=re.MULTILINE,
        )
    )
    # 33: + NEWSMON_INGEST_LOCK_WAIT and the three POLL_ intervals (issue 5); 35: the task
    # runner and the Dask address (issue 9); 36: the immediate poll interval, 37: a batch's
    # byte budget (issue 21); 41: the reading room's users, proxy header, secret, address
    assert len(read) == 41
    assert documented == read


# --- load_feeds ----------------------------------------------------------------------------


def test_the_shipped_feeds_file_loads() -> None:
    feeds = load_feeds(DEFAULT_CONFIG_DIR / "feeds.toml")
    assert len(feeds) == 9
    assert all(f.name and re.match(r"https?://[^/]+/", f.url) for f in feeds)
    assert len({f.name for f in feeds}) == len({f.url for f in feeds}) == 9
    assert feeds[0] == FeedConfig(
        name="NATO: news",
        url="https://www.nato.int/cps/rss/en/natohq/rssFeed.xsl/rssFeed.xml",
        tags=("nato", "official"),
        language="en",
        poll_interval_minutes=30,
    )


def test_optional_keys_default_and_language_is_lowercased(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(
        '[[feeds]]\nname = " A "\nurl = "http://a.example/rss"\n\n'
        '[[feeds]]\nname = "B"\nurl = "https://b.example/rss"\nlanguage = "DE"\n',
        encoding="utf-8",
    )
    assert load_feeds(path) == [
        FeedConfig("A", "http://a.example/rss"),
        FeedConfig("B", "https://b.example/rss", language="de"),
    ]


def test_relative_local_paths_resolve_against_the_feeds_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "feeds.toml"
    path.write_text(
        '[[feeds]]\nname = "local"\nurl = "local/feed.xml"\n\n'
        f'[[feeds]]\nname = "abs"\nurl = "{tmp_path / "abs.xml"}"\n\n'
        '[[feeds]]\nname = "file-url"\nurl = "file:///srv/feed.xml"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # not the feeds file's folder
    assert [f.url for f in load_feeds(path)] == [
        str((folder / "local" / "feed.xml").resolve()),
        str(tmp_path / "abs.xml"),
        "file:///srv/feed.xml",
    ]


def _feeds_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "feeds.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert info.value.source == str(path)
    assert "Fix: " in message
    return message


GOOD = '[[feeds]]\nname = "A"\nurl = "https://a.example/rss"\n\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "feeds = [",
            ": not valid TOML (",
            id="invalid-toml",
        ),
        pytest.param(
            "",
            ": feeds: no [[feeds]] tables. Fix: add at least one [[feeds]] with name and url",
            id="no-feeds",
        ),
        pytest.param(
            "feeds = []",
            ": feeds: no [[feeds]] tables. Fix: add at least one [[feeds]] with name and url",
            id="empty-feeds",
        ),
        pytest.param(
            'title = "x"\n' + GOOD,
            ": title: unknown top-level key. Fix: use only [[feeds]] tables",
            id="unknown-top-level",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nurl = "https://b.example/rss"\n',
            ': feeds[1].name: missing or empty. Fix: add name = "Outlet: section"',
            id="missing-name",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "  "\nurl = "https://b.example/rss"\n',
            ': feeds[1].name: missing or empty. Fix: add name = "Outlet: section"',
            id="blank-name",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\n',
            ': feeds[1].url: missing or empty. Fix: add url = "https://example.org/rss"',
            id="missing-url",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurll = "https://b.example/rss"\n',
            ": feeds[1].urll: unknown key. "
            "Fix: use only: language, name, poll_interval_minutes, tags, url",
            id="typo-key",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https://b.example/rss"\ntags = "nato"\n',
            ": feeds[1].tags: must be a list of strings, got 'nato'. Fix: tags = [\"nato\"]",
            id="tags-string",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https://b.example/rss"\ntags = [1]\n',
            ': feeds[1].tags: must be a list of strings, got [1]. Fix: tags = ["nato"]',
            id="tags-int",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https://b.example/rss"\nlanguage = "e"\n',
            ": feeds[1].language: must be a language code, got 'e'. Fix: language = \"en\"",
            id="language-short",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https://b.example/rss"\nlanguage = 5\n',
            ': feeds[1].language: must be a language code, got 5. Fix: language = "en"',
            id="language-int",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https://b.example/rss"\n'
            "poll_interval_minutes = 0\n",
            ": feeds[1].poll_interval_minutes: must be a whole number of minutes from 1 to "
            "10080, got 0. Fix: poll_interval_minutes = 30",
            id="interval-0",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https://b.example/rss"\n'
            'poll_interval_minutes = "5"\n',
            ": feeds[1].poll_interval_minutes: must be a whole number of minutes from 1 to "
            "10080, got '5'. Fix: poll_interval_minutes = 30",
            id="interval-string",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https://b.example/rss"\n'
            "poll_interval_minutes = 20000\n",
            ": feeds[1].poll_interval_minutes: must be a whole number of minutes from 1 to "
            "10080, got 20000. Fix: poll_interval_minutes = 30",
            id="interval-too-big",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "A"\nurl = "https://b.example/rss"\n',
            ": feeds[1].name: duplicate name 'A' (also feeds[0]). "
            "Fix: give every feed a unique name",
            id="duplicate-name",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https://a.example/rss"\n',
            ": feeds[1].url: duplicate url 'https://a.example/rss' (also feeds[0]). "
            "Fix: list each feed once",
            id="duplicate-url",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https://me:secret@a.example/rss"\n',
            ": feeds[1].url: duplicate url 'https://a.example/rss' (also feeds[0]). "
            "Fix: list each feed once",
            id="duplicate-url-but-for-credentials",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "ftp://b.example/rss"\n',
            ": feeds[1].url: unsupported scheme 'ftp' in 'ftp://b.example/rss'. "
            "Fix: use an http(s) URL or a local file path",
            id="ftp",
        ),
        pytest.param(
            GOOD + '[[feeds]]\nname = "B"\nurl = "https:///rss"\n',
            ": feeds[1].url: 'https:///rss' has no host. Fix: write a full URL",
            id="no-host",
        ),
        pytest.param(
            "feeds = [1]\n",
            ": feeds[0]: is not a table. Fix: write it as a [[feeds]] table",
            id="not-a-table",
        ),
    ],
)
def test_bad_feeds_files_name_the_file_the_key_and_the_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = _feeds_error(tmp_path, text)
    path = str(tmp_path / "feeds.toml")
    if expected.endswith("("):  # the TOML parser's own wording follows
        assert message.startswith(path + expected)
        assert message.endswith(". Fix: correct the syntax there")
    else:
        assert message == path + expected


def test_missing_feeds_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    message = str(info.value)
    assert message.startswith(f"{path}: file not found. Fix: create it (for example:\n[[feeds]]")
    assert message.endswith(") or point to another")


# --- load_topics ---------------------------------------------------------------------------


def test_broken_topics_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "topics.toml"
    path.write_text(
        '[topics.defence]\nthreshhold = 0.5\n[topics.defence.queries.core]\nquery = "NATO"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_topics(path)
    assert str(info.value) == (
        f"{path}: topics.defence.threshhold: unknown key. "
        "Fix: remove it (did you mean 'threshold'?)"
    )


def test_the_shipped_topics_file_loads() -> None:
    assert "eu_nato_defence" in load_topics(DEFAULT_CONFIG_DIR / "topics.toml").names
