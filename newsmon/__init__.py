"""newsmon: news monitoring for EU-NATO defence affairs.

The logic lives in the ``extractors`` (fetch, parse, extract, filter) and ``warehouse`` (DuckDB)
packages; ``flows`` wires them into Prefect flows and ``newsmon.cli`` is the command line.
"""

__version__ = "0.1.0"
