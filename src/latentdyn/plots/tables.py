"""Result tables as a reader of the report sees them: one HTML page per table, with what each column
means and its unit, every run's row rounded to what its metric supports, and, where a configuration was
run with several seeds, its mean ± s.d. and n.

The CSV beside it keeps full precision for anyone who computes further; the page is for reading.
"""

import html
import re

import numpy as np
import pandas as pd

# column -> (what it is, unit, decimals shown). Units: "bits/spike" is per spike of the held-out units,
# "nats/bin" per neuron and bin of the evaluation trials' held-in units.
GLOSSARY = {
    "dataset": ("dataset (a name ending in _<n>ms is binned at n ms; _bw<b>: b channels observed)", "", None),
    "model": ("model name from the config (-L<k>: latent size k; -P<n>: pretrained on n full trials)", "", None),
    "latent_size": ("latent size of the model, where its name sets one", "", 0),
    "seed": ("seed of the run (model initialisation, validation split, sampling)", "", 0),
    "bandwidth": ("held-in channels observed per trial and bin", "channels", 0),
    "dropped_fraction": ("fraction of held-in channels left unobserved, 1 - bandwidth / channels", "", 3),
    "resolution": ("two-photon sampling: subframe (each neuron at its scan time) or frame", "", None),
    "co-bps": ("co-smoothing: held-out units' Poisson log-likelihood above their mean rate (NLB)", "bits/spike", 3),
    "fp-bps": ("forward prediction: the same for the bins after the window (NLB)", "bits/spike", 3),
    "vel R2": ("R² of hand velocity decoded by ridge regression from the rates (NLB)", "", 3),
    "psth R2": ("R² of the condition-averaged rates against the true PSTH (NLB)", "", 3),
    "tp corr": ("correlation of decoded and produced interval tp (DMFC_RSG)", "", 3),
    "nll": ("Poisson negative log-likelihood of the evaluation trials' held-in spikes", "nats per neuron-bin", 4),
    "rate_r2": ("R² of inferred against true rates, mean over neurons (ground truth only)", "", 3),
    "state_r2": ("R² of the true latent state from an affine map of the inferred state", "", 3),
    "calcium_r2": ("R² of the predicted against the true noiseless ΔF/F", "", 3),
    "subframe_calcium_r2": ("the same at sub-frame resolution", "", 3),
    "subframe_rate_r2": ("R² of rates deconvolved from the predicted ΔF/F against true rates, sub-frame", "", 3),
    "subframe_rate_diff_r2": ("the same for the rates' bin-to-bin changes", "", 3),
    "latent_r2": ("R² of the true latents from an affine map of the inferred state", "", 3),
    "kind": ("model kind", "", None),
    "variant": ("how inference ran (precision, eager, CUDA graph, compiled)", "", None),
    "bins": ("bins per trial", "bins", 0),
    "ms_per_trial": ("median latency of one trial at batch 1", "ms", 3),
    "ms_per_trial_q25": ("lower quartile over calls of the batch-1 latency", "ms", 3),
    "ms_per_trial_q75": ("upper quartile over calls of the batch-1 latency", "ms", 3),
    "trials_per_s": ("median throughput of a batch of `throughput_batch` trials", "trials/s", 0),
    "trials_per_s_q25": ("lower quartile over calls of the throughput", "trials/s", 0),
    "trials_per_s_q75": ("upper quartile over calls of the throughput", "trials/s", 0),
    "throughput_batch": ("trials per call of the throughput columns only (latency is at batch 1)", "trials", 0),
    "max_abs_diff": ("largest |rate − fp32 eager rate| of the variant", "spikes/bin", 6),
    "device": ("where it ran", "", None),
    "dci_disentanglement": ("DCI disentanglement of the codes: how much each code dim is about one factor", "", 3),
    "dci_completeness": ("DCI completeness: how much each factor is held by one code dim", "", 3),
    "dci_informativeness": ("DCI informativeness: held-out R² of the factors from the code (trees)", "", 3),
    "angle_r2": ("R² of reach angle (cos, sin) decoded from the code by ridge, held-out trials", "", 3),
    "velocity_r2": ("R² of hand velocity (from the code, or decoded from generated rates)", "", 3),
    "condition": ("the withheld condition (its trial-table fields)", "", None),
    "angle_deg": ("the condition's reach angle (its mean hand displacement)", "degrees", 0),
    "psth_r2": ("R² of generated mean rates against the real withheld trials' rates, variance-weighted over units", "", 3),
    "angle_error_deg": ("angle between the decoded and the real reach", "degrees", 1),
    "kl_population_count": ("KL (generated ‖ real) of the population spike count per bin", "nats", 4),
    "rmse_pairwise_corr": ("RMSE of the neuron-pair spike-count correlations", "", 4),
    "rmse_isi_mean": ("RMSE over neurons of the mean inter-spike interval", "s", 4),
    "rmse_isi_sd": ("RMSE over neurons of the s.d. of inter-spike intervals", "s", 4),
}
BAND = re.compile(r"^subframe_rate_r2_(?P<band>[0-9.]+-[0-9.]+)hz$")
# Numeric columns that describe a configuration, not a result: rows that share them are repeats (seeds).
CONFIGURATION_NUMBERS = {"latent_size", "bandwidth", "dropped_fraction", "bins", "throughput_batch", "angle_deg"}


def describe(column):
    """(what it is, unit, decimals) of a column, known or not."""
    if column in GLOSSARY:
        return GLOSSARY[column]
    band = BAND.match(column)
    if band:
        return (f"R² of the deconvolved rates band-passed to {band['band']} Hz, sub-frame", "", 3)
    return ("(not in the glossary)", "", 3)


def seed_summary(table):
    """Mean, s.d. and n over seeds of every metric, per configuration (the other columns), or None when
    the table has no seeds or no configuration was run more than once."""
    if "seed" not in table or table.empty:
        return None
    metrics = [c for c in table.select_dtypes("number").columns if c not in CONFIGURATION_NUMBERS | {"seed"}]
    keys = [c for c in table.columns if c not in metrics and c != "seed"]
    summary = table.groupby(keys, dropna=False, sort=False)[metrics].agg(["mean", "std", "count"])
    if summary.xs("count", axis=1, level=1).to_numpy().max(initial=0) < 2:
        return None
    return summary


def _format(value, decimals):
    if isinstance(value, float) and np.isnan(value):
        return "–"
    if decimals is None or not isinstance(value, (int, float, np.number)):
        return html.escape(str(value))
    return f"{value:.{decimals}f}"


def _rows_html(table):
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_format(row[c], describe(c)[2])}</td>" for c in table.columns) + "</tr>"
        for _, row in table.iterrows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary_html(summary):
    keys = list(summary.index.names)
    metrics = list(dict.fromkeys(summary.columns.get_level_values(0)))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [*keys, "n", *metrics])
    body = []
    for index, row in summary.iterrows():
        index = index if isinstance(index, tuple) else (index,)
        n = int(row.xs("count", level=1).max())
        cells = [_format(v, describe(k)[2]) for k, v in zip(keys, index)] + [str(n)]
        for metric in metrics:
            mean, sd, decimals = row[(metric, "mean")], row[(metric, "std")], describe(metric)[2]
            spread = "" if np.isnan(sd) else f" ± {sd:.{decimals}f}"
            cells.append(_format(mean, decimals) + spread)
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


STYLE = """<style>
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
</style>"""


def table_html(table, title):
    """The whole page for `table` (a DataFrame as the CSV holds it)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}"
             f"</head><body><h2>{html.escape(title)}</h2>"]
    summary = seed_summary(table)
    if summary is not None:
        parts.append("<h3>Mean ± s.d. over seeds (n = seeds per configuration)</h3>" + _summary_html(summary))
    elif "seed" in table:
        parts.append("<p>One seed per configuration: no spread over seeds can be given.</p>")
    parts.append(f"<h3>Every run ({len(table)} rows)</h3>" + _rows_html(table))
    glossary = "".join(
        f"<tr><td>{html.escape(c)}</td><td style='text-align:left'>{html.escape(describe(c)[0])}</td>"
        f"<td>{html.escape(describe(c)[1])}</td></tr>"
        for c in table.columns
    )
    parts.append("<h3>Columns</h3><table><thead><tr><th>column</th><th>meaning</th><th>unit</th></tr></thead>"
                 f"<tbody>{glossary}</tbody></table>")
    parts.append("<p>Rounded for reading; the CSV of the same name holds full precision. – : not computed "
                 "for that run (the data cannot support the metric).</p></body></html>")
    return "".join(parts)


def render_table(csv_path, out_path, title):
    from latentdyn.io import atomic_path, reading

    with reading(csv_path, "result table"):
        table = pd.read_csv(csv_path)
    with atomic_path(out_path) as tmp, open(tmp, "w") as f:
        f.write(table_html(table, title))
