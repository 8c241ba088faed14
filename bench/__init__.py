"""Benchmarks of RevExOS on generated data (``make bench`` → ``python -m bench``); see bench/__main__.py."""
