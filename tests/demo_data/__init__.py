"""Tests of the synthetic demo-data generator (deep_emotion/demo_data)."""
