"""Benchmarks: heavy measurements kept out of make test. Run with `make bench` or `python -m bench.<name>`."""
