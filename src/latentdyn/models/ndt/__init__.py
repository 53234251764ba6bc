"""NDT: the Neural Data Transformer, a masked-modelling transformer encoder (Ye & Pandarinath 2021; README §11)."""
