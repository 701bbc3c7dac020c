"""Benchmarks with measured figures: see bench/README.md. Run all with `bench/run.sh` or `python -m bench.run`."""
