"""Where the project's own files are: imported by modules that must stay light to import
(newsmon/prefect_server.py starts Prefect's server before anything heavy is loaded)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_DIR = PROJECT_ROOT / "config"

__all__ = ["DEFAULT_CONFIG_DIR", "PROJECT_ROOT"]
