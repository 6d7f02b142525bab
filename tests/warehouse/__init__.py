"""Tests of newsmon.warehouse."""
