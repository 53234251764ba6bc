"""Multisession LFADS: one LFADS model shared by sessions with different neurons, through a linear read-in and read-out per session (Pandarinath et al. 2018)."""
