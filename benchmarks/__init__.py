"""The kit's own benchmark (python -m benchmarks.run, through scripts/benchmark.sh) and the probes it runs."""
