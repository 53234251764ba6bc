"""AutoLFADS: LFADS whose hyperparameters are searched by population-based training on Ray Tune (Keshtkaran et al. 2022)."""
