"""Tests of newsmon.cli and the application modules it drives."""
