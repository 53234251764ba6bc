"""AutoLFADS (Keshtkaran et al. 2022, Nature Methods): LFADS whose learning rate, dropout, coordinated-
dropout rate and KL/L2 scales are searched by population-based training while it trains, so that every
dataset gets a well-regularised model without hand tuning.

The model is LFADS (models/lfads): the same build, predictions and real-time inference, from the weights
of the population's best worker at the search's end. Training is `train`, which the pipeline calls in
place of one run of the shared trainer: a population on Ray Tune (tune.py) whose workers are runs of
that trainer; the algorithm is pbt.py.
"""

from latentdyn.models.lfads.model import STATE_LATENT, build, infer_rates, predict

__all__ = ["STATE_LATENT", "build", "infer_rates", "predict", "train"]


def train(model, prepared, params, *, run_dir, seed, device, identity):
    """The population search (tune.run_population); `model` ends with the best worker's weights and
    `run_dir/model.pt` is written as the shared trainer writes it."""
    from latentdyn.models.autolfads.tune import run_population  # Ray is imported only to train

    run_population(model, prepared, params, run_dir=run_dir, seed=seed, device=device, identity=identity)
