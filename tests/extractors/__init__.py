"""Tests of newsmon.extractors."""
