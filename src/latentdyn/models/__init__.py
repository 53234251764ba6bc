"""Models. Each model kind exposes `fit_predict`; `registry.MODEL_KINDS` maps config kinds to them."""
