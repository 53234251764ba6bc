"""Sequential autoencoder with a GRU or neural-ODE generator (Sedler, Versteeg & Pandarinath 2023)."""
