"""Where a digest goes: rendering and delivery per channel (e-mail today).

A stage like the extractors: plain functions over a batch, no SQL, no Prefect."""
