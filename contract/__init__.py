"""The ground every layer stands on: the data contract, process settings and how outputs are
published. Imports nothing of this project (tests/test_layers.py checks it), so that components/,
trainer/, pipeline/ and deep_emotion/ can all depend on it without depending on each other.
"""
