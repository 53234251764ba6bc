"""LFADS: latent factor analysis via dynamical systems, after lfads-torch (README §7)."""
