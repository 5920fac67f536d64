"""Benchmarks behind `make bench` (`python -m bench`): one module per figure, results in bench/results.json."""
