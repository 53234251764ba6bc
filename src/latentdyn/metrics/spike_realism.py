"""How much generated spikes look like recorded ones, scored the way LDNS scores them.

LDNS (Kapoor et al., NeurIPS 2024, "Latent Diffusion for Neural Spiking Data", mackelab/LDNS) compares
samples of a generative model with held-out real trials by four numbers, each 0 for a perfect match:
- KL(model ‖ data) of the histogram of the population spike count (all neurons summed) per bin;
- RMSE between the two neuron × neuron correlation matrices of the counts, diagonal zeroed;
- RMSE over neurons of the mean and of the s.d. of the inter-spike intervals (ISIs), spike times spread
  evenly within their bin.
Two halves of the real trials scored against each other (split_half) give the ceiling a model cannot
beat with that many trials.

Spike arrays are counts, trials × bins × neurons, non-negative integers (any dtype holding them); the
generated and real arrays may hold different numbers of trials but the same neurons. Rates follow the
project's convention (docs/formats.md): expected spike counts per bin, not Hz.
"""

import numpy as np

# Added to every bin of both count histograms before renormalising: a population count the model
# produces but the data never shows costs p·log(p / 1e-10) ≈ 23·p nats instead of an infinite KL, and a
# count the model never produces costs nothing (0 · log 0 = 0).
HISTOGRAM_EPSILON = 1e-10
# A neuron needs this many ISIs, in the generated and in the real spikes, for its ISI s.d. to exist.
MIN_ISIS = 2


def _counts(spikes, name):
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"{name} must be trials × bins × neurons (got shape {spikes.shape})")
    if not np.all(np.isfinite(spikes)) or np.any(spikes < 0) or np.any(spikes != np.round(spikes)):
        raise ValueError(f"{name} must hold spike counts: non-negative integers")
    return spikes.astype(np.int64)


def _pair(generated, real):
    generated, real = _counts(generated, "generated"), _counts(real, "real")
    if generated.shape[2] != real.shape[2]:
        raise ValueError(f"generated has {generated.shape[2]} neurons and real {real.shape[2]}")
    return generated, real


def population_count_kl(generated, real):
    """KL(model ‖ data), in nats, of the distribution of the population count per bin.

    Each bin of each trial gives one count, summed over neurons; the histograms run over the integers 0 to
    the largest count of either array, each gets HISTOGRAM_EPSILON per integer and is renormalised.
    The direction is LDNS's: mass the model puts where the data has none is what costs most.
    """
    generated, real = _pair(generated, real)
    generated_totals, real_totals = generated.sum(axis=2).ravel(), real.sum(axis=2).ravel()
    length = max(generated_totals.max(initial=0), real_totals.max(initial=0)) + 1
    p = np.bincount(generated_totals, minlength=length) / generated_totals.size + HISTOGRAM_EPSILON
    q = np.bincount(real_totals, minlength=length) / real_totals.size + HISTOGRAM_EPSILON
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def count_correlations(spikes):
    """Neuron × neuron Pearson correlations of the counts over all trials × bins, diagonal 0.

    A neuron whose count never varies (e.g. silent) has no defined correlation; it gets 0 with every
    neuron, so it adds no NaN and matches another silent or uncorrelated neuron.
    """
    spikes = _counts(spikes, "spikes")
    flat = spikes.reshape(-1, spikes.shape[2]).astype(np.float64)
    centred = flat - flat.mean(axis=0)
    norms = np.sqrt(np.sum(centred**2, axis=0))
    scaled = np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)
    correlations = scaled.T @ scaled
    np.fill_diagonal(correlations, 0.0)
    return correlations


def pairwise_correlation_rmse(generated, real):
    """RMSE between the count correlation matrices of generated and real spikes, over all neurons²
    entries with the diagonal zeroed (as LDNS, so the diagonal counts as agreeing)."""
    generated, real = _pair(generated, real)
    return float(np.sqrt(np.mean((count_correlations(generated) - count_correlations(real)) ** 2)))


def isi_stats(spikes, bin_width_s):
    """Per neuron: mean ISI (s), s.d. of ISIs (s, population s.d.) and the number of ISIs.

    A bin with c spikes puts them at (k + 1) / (c + 1) of the bin, k = 0 … c − 1 (LDNS's even spread), so
    spikes sharing a bin give ISIs shorter than a bin. Intervals are taken within a trial only and pooled
    over the trials of each neuron. Where a neuron has no ISI its mean and s.d. are 0 (see the count).
    """
    spikes = _counts(spikes, "spikes")
    if not bin_width_s > 0:
        raise ValueError(f"bin_width_s must be positive (got {bin_width_s})")
    n_trials, n_bins, n_neurons = spikes.shape
    counts = spikes.transpose(2, 0, 1).ravel()  # neuron-major, then trial, then bin: spikes in time order
    owner = np.repeat(np.arange(counts.size), counts)  # the (neuron, trial, bin) entry of each spike
    first = np.cumsum(counts) - counts
    rank = np.arange(owner.size) - first[owner]
    times = bin_width_s * (owner % n_bins + (rank + 1) / (counts[owner] + 1))
    train = owner // n_bins  # one spike train per (neuron, trial)
    same_train = train[1:] == train[:-1]
    intervals = np.diff(times)[same_train]
    neuron = (train[1:] // n_trials)[same_train]
    n_isis = np.bincount(neuron, minlength=n_neurons)
    sums = np.bincount(neuron, weights=intervals, minlength=n_neurons)
    squares = np.bincount(neuron, weights=intervals**2, minlength=n_neurons)
    mean = np.divide(sums, n_isis, out=np.zeros(n_neurons), where=n_isis > 0)
    variance = np.divide(squares, n_isis, out=np.zeros(n_neurons), where=n_isis > 0) - mean**2
    return mean, np.sqrt(np.maximum(variance, 0.0)), n_isis


def isi_stat_rmse(generated, real, bin_width_s):
    """(RMSE of the per-neuron mean ISI, RMSE of the per-neuron ISI s.d.), in seconds.

    Both RMSEs run over the same neurons: those with at least MIN_ISIS intervals in the generated and in
    the real spikes; the others are skipped in both (an s.d. of fewer than 2 intervals says nothing), never
    scored as NaN. No neuron left is an error, not a number.
    """
    generated, real = _pair(generated, real)
    generated_mean, generated_sd, generated_n = isi_stats(generated, bin_width_s)
    real_mean, real_sd, real_n = isi_stats(real, bin_width_s)
    kept = (generated_n >= MIN_ISIS) & (real_n >= MIN_ISIS)
    if not kept.any():
        raise ValueError(f"no neuron has {MIN_ISIS} inter-spike intervals in both the generated and real spikes")
    rmse_mean = np.sqrt(np.mean((generated_mean[kept] - real_mean[kept]) ** 2))
    rmse_sd = np.sqrt(np.mean((generated_sd[kept] - real_sd[kept]) ** 2))
    return float(rmse_mean), float(rmse_sd)


def poisson_spikes(rates, seed=0):
    """Poisson counts drawn from rates in expected spikes per bin (the project's rate unit, as in the
    model outputs of docs/formats.md; multiply Hz by the bin width first). Same shape, int64.

    How a rate model (LFADS) turns into generated spikes for the scores above.
    """
    rates = np.asarray(rates, dtype=np.float64)
    if not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise ValueError("rates must be finite and non-negative (expected spikes per bin)")
    return np.random.default_rng(seed).poisson(rates).astype(np.int64)


def realism_row(generated, real, bin_width_s):
    """The four LDNS scores of generated against real spikes, as one table row."""
    rmse_isi_mean, rmse_isi_sd = isi_stat_rmse(generated, real, bin_width_s)
    return {
        "kl_population_count": population_count_kl(generated, real),
        "rmse_pairwise_corr": pairwise_correlation_rmse(generated, real),
        "rmse_isi_mean": rmse_isi_mean,
        "rmse_isi_sd": rmse_isi_sd,
    }


def split_half(real, seed=0):
    """Two disjoint random halves of the trials, n // 2 each (an odd trial out), for the ceiling row:
    realism_row(*split_half(real), bin_width_s) is what sampling noise alone costs."""
    real = np.asarray(real)
    if real.shape[0] < 2:
        raise ValueError("split_half needs at least 2 trials")
    order = np.random.default_rng(seed).permutation(real.shape[0])
    half = real.shape[0] // 2
    return real[order[:half]], real[order[half: 2 * half]]
