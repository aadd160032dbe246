"""Vectorized research: strategy kernels for the whole grid, vectorbt simulation, metrics."""
