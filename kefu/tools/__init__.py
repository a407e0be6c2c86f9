"""Developers' tools: evaluations, benchmarks, the soak test and the simulated visitors."""
