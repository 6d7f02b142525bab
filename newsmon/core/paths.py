"""Where the package's own files are: imported by modules that must stay light to import
(newsmon/prefect_server.py starts Prefect's server before anything heavy is loaded).

The defaults (feeds, topics, alerts, templates, the relevance model, the demo sample) are package
data in ``newsmon/config`` (in a checkout, the link to the top-level ``config/`` folder), so an
installed wheel finds them from any folder. A user's own copies live where ``NEWSMON_CONFIG_DIR``
points (``newsmon config init DIR`` writes them).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEFAULT_CONFIG_DIR = Path(str(files("newsmon") / "config"))

__all__ = ["DEFAULT_CONFIG_DIR"]
