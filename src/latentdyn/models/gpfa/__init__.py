"""Gaussian-process factor analysis (Elephant's GPFA) with Poisson GLM readouts: the NLB's classic latent baseline."""
