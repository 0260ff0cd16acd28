"""Benchmarks: each prints its figures and the target it is compared with."""
