"""The reading room's tests read one warehouse: the bundled sample, ingested once per worker
(13 articles, 8 relevant), one relevant title made hostile. Each test module gets its own copy
(``warehouse``: pages mark articles read, labels are recorded), and tests that change more copy
that again."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.helpers import copy_warehouse
from tests.sample import ingest_sample
from tests.web.room import HOSTILE


@pytest.fixture(scope="session")
def sample_warehouse(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = ingest_sample(tmp_path_factory.mktemp("web"))
    with duckdb.connect(str(db)) as con:
        con.execute(
            "UPDATE articles SET title = ? WHERE article_id = (SELECT min(article_id) FROM "
            "article_matches WHERE relevant AND article_id IN "
            "(SELECT article_id FROM articles WHERE NOT is_baseline))",
            [HOSTILE],
        )
    return db


@pytest.fixture(scope="module")
def warehouse(sample_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's copy of the sample warehouse."""
    return copy_warehouse(sample_warehouse, tmp_path_factory.mktemp("module"))
