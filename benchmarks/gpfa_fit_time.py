"""What fitting the gpfa kind costs at MC_Maze's size, at 5 ms and 20 ms bins.

Synthetic Poisson counts of MC_Maze's shape (val phase: 1721 training and 574 evaluation trials of
700 ms, 137 held-in and 45 held-out units, 200 ms forward window) drawn from smooth random latents,
fitted with the gpfa_mc_maze preset (52 latents). Elephant's EM runs on 20-bin segments of the
training trials, so an iteration grows with the number of segments (linearly in bins), not with the
cube of a trial's bins; only inferring a whole trial's latents is cubic in its bins × latent size. A full fit runs `em_max_iters` (500) iterations unless EM
converges first, so the EM is timed over `--iterations` and scaled to 500; everything else (spike-train
conversion, factor-analysis start, inferring the training trials, GLMs) is timed as it runs, and
`predict` (inferring every split, GLM rates) in full.

    python benchmarks/gpfa_fit_time.py                       # 5 and 20 ms, 10 EM iterations timed
    python benchmarks/gpfa_fit_time.py --bins-ms 5 --bin-factor 4 --threads 2
"""

import argparse
import json
import resource
import time

import numpy as np
from scipy.ndimage import gaussian_filter1d
from threadpoolctl import threadpool_limits

from latentdyn.data.prepare import prepare
from latentdyn.models.gpfa import model as gpfa
from latentdyn.models.kinds import get_kind

WINDOW_MS, FORWARD_MS = 700, 200
FULL_EM_ITERATIONS = 500  # Elephant's em_max_iters, the presets' too


def mc_maze_like(bin_ms, n_train, n_eval, n_heldin, n_heldout, seed=0):
    """Poisson counts from 8 smooth latents (white noise smoothed over ~100 ms), ~15 Hz on average."""
    rng = np.random.default_rng(seed)
    n_bins, n_forward = WINDOW_MS // bin_ms, FORWARD_MS // bin_ms
    n_trials, n_units = n_train + n_eval, n_heldin + n_heldout
    latents = gaussian_filter1d(rng.standard_normal((n_trials, n_bins + n_forward, 8)), 100 / bin_ms, axis=1)
    loadings = rng.standard_normal((8, n_units)) / np.sqrt(8)
    rates = np.exp(np.log(15.0 * bin_ms / 1000) - 0.5 + (latents / latents.std()) @ loadings)
    spikes = rng.poisson(rates).astype(np.float32)
    arrays = {}
    for split, rows in (("train", slice(0, n_train)), ("eval", slice(n_train, None))):
        for units, columns in (("heldin", slice(0, n_heldin)), ("heldout", slice(n_heldin, None))):
            if split == "eval" and units == "heldout":
                continue  # as an NLB file's evaluation inputs
            arrays[f"{split}_spikes_{units}"] = spikes[rows, :n_bins, columns]
            arrays[f"{split}_spikes_{units}_forward"] = spikes[rows, n_bins:, columns]
    return arrays


def time_one(bin_ms, args):
    arrays = mc_maze_like(bin_ms, args.train_trials, args.eval_trials, args.heldin, args.heldout)
    attrs = {"dataset": "mc_maze_like", "bin_width_s": bin_ms / 1000}
    params = get_kind("gpfa").resolve({"kind": "gpfa", "latent_size": args.latent_size, "bin_factor": args.bin_factor,
                                       "em_max_iters": args.iterations})
    prepared = prepare(arrays, attrs, valid_fraction=None, seed=0)
    started = time.perf_counter()
    model = gpfa.fit(gpfa.build(params, prepared.shapes), prepared, params)
    fit_s = time.perf_counter() - started
    iterations = np.asarray(model.gpfa.fit_info["iteration_time"])
    em_s = float(iterations.sum())
    started = time.perf_counter()
    gpfa.predict(model, prepared, params)
    predict_s = time.perf_counter() - started
    per_iteration = float(np.median(iterations))
    return {
        "bin_ms": bin_ms,
        "gpfa_bin_ms": bin_ms * args.bin_factor,
        "bins_per_trial": arrays["train_spikes_heldin"].shape[1],
        "latent_size": args.latent_size,
        "em_iterations_timed": len(iterations),
        "em_s_per_iteration": per_iteration,
        "fit_s_besides_em": fit_s - em_s,
        "fit_s_at_500_iterations": fit_s - em_s + per_iteration * FULL_EM_ITERATIONS,
        "predict_s": predict_s,
        "max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bins-ms", type=int, nargs="+", default=[20, 5])
    parser.add_argument("--bin-factor", type=int, default=1, help="the kind's bin_factor (GPFA bins of this many data bins)")
    parser.add_argument("--iterations", type=int, default=10, help="EM iterations timed (scaled to 500)")
    parser.add_argument("--latent-size", type=int, default=52, help="gpfa_mc_maze preset: 52")
    parser.add_argument("--train-trials", type=int, default=1721)
    parser.add_argument("--eval-trials", type=int, default=574)
    parser.add_argument("--heldin", type=int, default=137)
    parser.add_argument("--heldout", type=int, default=45)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all)")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    results = []
    with threadpool_limits(limits=args.threads):
        for bin_ms in args.bins_ms:
            result = time_one(bin_ms, args)
            results.append(result)
            print(f"{bin_ms} ms bins ({result['bins_per_trial']} per trial, GPFA bins {result['gpfa_bin_ms']} ms),"
                  f" {args.latent_size} latents: EM {result['em_s_per_iteration']:.2f} s/iteration,"
                  f" rest of fit {result['fit_s_besides_em']:.1f} s -> fit at 500 iterations"
                  f" {result['fit_s_at_500_iterations'] / 60:.1f} min; predict {result['predict_s']:.1f} s;"
                  f" peak RSS {result['max_rss_gb']:.1f} GB", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
