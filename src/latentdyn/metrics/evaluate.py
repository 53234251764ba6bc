"""Score one model output against its binned dataset with every metric the dataset supports.

Ground-truth metrics (rate R², state R², NLL) need `eval_true_*` arrays; the benchmark's metrics
(co-bps, vel R², psth R², fp-bps) need held-out units or behaviour. Each is computed where its
inputs exist, so the same call serves attractors, simulated reaching and real recordings. Calcium
datasets (attrs `observation = "calcium"`: dF/F, not counts) get the calcium metrics instead
(metrics/calcium.py): no Poisson NLL and no spike-rate R² on fluorescence.
"""

import numpy as np

from latentdyn.data.format import state_latents, validate_model_output
from latentdyn.metrics.calcium import calcium_metrics, is_calcium
from latentdyn.metrics.ground_truth import poisson_nll_per_bin, rate_r2, state_r2


def ground_truth_metrics(data, output, split="eval", state=None):
    """Rate R², NLL and, given the inferred dynamical `state` (trials × bins × k), state R²."""
    metrics = {}
    rates_key = f"{split}_rates_heldin"
    if rates_key not in output:
        return metrics
    metrics["nll"] = poisson_nll_per_bin(output[rates_key], data[f"{split}_spikes_heldin"])
    true_rates = [data[k] for k in (f"{split}_true_rates_heldin", f"{split}_true_rates_heldout") if k in data]
    predicted = [output[k] for k in (f"{split}_rates_heldin", f"{split}_rates_heldout") if k in output]
    if true_rates and len(true_rates) == len(predicted):
        metrics["rate_r2"] = rate_r2(np.concatenate(predicted, -1), np.concatenate(true_rates, -1))
    if f"{split}_true_latents" in data and state is not None:
        metrics["state_r2"] = state_r2(data[f"{split}_true_latents"], state[:, : data[f"{split}_true_latents"].shape[1]])
    return metrics


def evaluate_run(data, attrs, output, data_path="<data>", output_path="<output>", output_attrs=None):
    """All applicable metrics for one run, as a flat dict (`output_attrs` name the state latent)."""
    validate_model_output(output, data, output_path)
    state = state_latents(output, output_attrs or {}, "eval")
    if is_calcium(attrs):
        train_state = state_latents(output, output_attrs or {}, "train")
        metrics = calcium_metrics(data, attrs, output, state=state, train_state=train_state)
    else:
        metrics = ground_truth_metrics(data, output, state=state)
    if "eval_spikes_heldout" in data or "eval_behavior" in data:
        from latentdyn.metrics.nlb import evaluate_submission

        metrics.update(evaluate_submission(data, output, attrs["dataset"], submission_path=output_path))
    return metrics
