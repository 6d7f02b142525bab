"""DuckDB extensions loaded from pinned Python packages, never downloaded.

``INSTALL x`` fetches from extensions.duckdb.org, which this product cannot count on (offline
machines, reproducible installs). Each extension newsmon uses ships as a
``duckdb-extension-<name>`` package pinned to the same version as ``duckdb`` (constraints.txt),
and is loaded from the binary in that package.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

from newsmon.core.errors import WarehouseError

# extension name -> the package that ships its binary (pip name, import name)
PACKAGES: dict[str, tuple[str, str]] = {
    "fts": ("duckdb-extension-fts", "duckdb_extension_fts"),
    "ducklake": ("duckdb-extension-ducklake", "duckdb_extension_ducklake"),
    # the sqlite extension's own name; the binary in duckdb-extension-sqlite is named so that
    # LOAD looks for the wrong entry point, the sqlite-scanner package's loads
    "sqlite_scanner": ("duckdb-extension-sqlite-scanner", "duckdb_extension_sqlite_scanner"),
}


def extension_path(name: str) -> Path:
    """The binary of extension ``name`` for the installed duckdb, from its package."""
    pip_name, module = PACKAGES[name]
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise WarehouseError(
            f"the {name} extension needs the {pip_name} package: reinstall newsmon (make setup)"
        ) from None
    root = Path(package.__file__ or "").parent / "extensions"
    found = sorted(root.glob(f"v{duckdb.__version__}/{name}.duckdb_extension"))
    if not found:
        raise WarehouseError(
            f"{pip_name} has no {name} extension for duckdb {duckdb.__version__}: "
            "install the matching version (see constraints.txt)"
        )
    return found[0]


def load(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load extension ``name`` into ``con`` (once) from its package, without network."""
    loaded = con.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = ?", [name]
    ).fetchone()
    if loaded and loaded[0]:
        return
    path = str(extension_path(name)).replace("'", "''")
    con.execute(f"LOAD '{path}'")


__all__ = ["PACKAGES", "extension_path", "load"]
