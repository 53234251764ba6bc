"""The Neural Latents Benchmark's spike-smoothing baseline."""
