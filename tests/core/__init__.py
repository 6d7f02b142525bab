"""Tests of newsmon.core."""
