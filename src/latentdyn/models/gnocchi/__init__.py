"""GNOCCHI: a diffusion model of neural population activity with a disentangled per-trial code."""
