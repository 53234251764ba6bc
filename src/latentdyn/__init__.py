"""latentdyn: latent-dynamics models of neural population activity, from data to paper figures."""

__version__ = "0.1.0"
