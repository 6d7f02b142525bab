"""Tests of newsmon.flows."""
