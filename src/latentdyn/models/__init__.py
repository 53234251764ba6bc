"""Models, one package per model kind; `kinds.py` is their registry."""
