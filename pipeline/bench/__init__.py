"""Throughput benchmarks: a synthetic corpus generator, the pipeline timed on it, a peer stack."""
