"""Pipeline stages as plain functions over batches: fetch, parse feeds, extract articles, filter.

Nothing here knows about Prefect or DuckDB; ``flows`` orchestrates, ``warehouse`` stores.
"""
