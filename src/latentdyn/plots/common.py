"""What every plot shares: saving (PNG and PDF side by side, written atomically), the panel grid, and
seeds drawn as seeds."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from latentdyn.io import atomic_path  # noqa: E402

MAX_COLUMNS = 3  # the report shows a figure ~850 px wide: more columns make its ticks unreadable


def save_figure(fig, png_path):
    """Save `fig` as `png_path` and as the PDF beside it."""
    png_path = Path(png_path)
    for path in (png_path, png_path.with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], dpi=150, bbox_inches="tight")
    plt.close(fig)


def panel_grid(n_panels, width, height, **subplot_kw):
    """(figure, its first `n_panels` axes) in as few rows as MAX_COLUMNS allows, filled evenly (4 panels:
    2 × 2), each `width` × `height` inches; spare cells are removed. `subplot_kw` goes to every panel (e.g.
    projection="3d")."""
    rows = max(-(-n_panels // MAX_COLUMNS), 1)
    columns = max(-(-n_panels // rows), 1)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False,
                             subplot_kw=subplot_kw or None)
    for ax in axes.ravel()[n_panels:]:
        ax.remove()
    return fig, list(axes.ravel()[:n_panels])


def seeds_per_configuration(table, by):
    """The most runs (seeds) any configuration, the rows sharing the `by` columns, has."""
    return int(table.groupby(by, dropna=False).size().max()) if len(table) else 0


def draw_seeds_and_mean(ax, table, x, y, hue, palette, categorical=False, floor=None):
    """Each seed's `y` as a small dot and the mean over seeds as a large marker (joined along a numeric
    `x`), one colour per `hue` level (`palette`). No error bars: the dots are the spread, and where every
    configuration has one seed only the mean is drawn, so no spread is shown that was not measured.
    With a `floor` (numeric `x` only) values and means below it are drawn at it, a seed's as an open
    triangle (the caller marks the means: their true values belong beside them). Returns n, the most seeds
    of any configuration."""
    table = table.dropna(subset=[y])
    hues = [h for h in palette if h in set(table[hue])]
    n = seeds_per_configuration(table, [x, hue])
    common = dict(x=x, y=y, hue=hue, hue_order=hues, palette=palette, ax=ax)
    if categorical:
        order = list(dict.fromkeys(table[x]))
        if n > 1:
            sns.stripplot(table, **common, order=order, dodge=True, jitter=False, size=3, alpha=0.5, legend=False)
        sns.pointplot(table, **common, order=order, dodge=0.8 - 0.8 / len(hues), errorbar=None, linestyle="none",
                      markers="D", markersize=5)
        return n
    estimator = "mean" if floor is None else (lambda values: max(values.mean(), floor))
    if n > 1:
        clipped = table[y] < (float("-inf") if floor is None else floor)
        sns.scatterplot(table[~clipped], **common, s=12, alpha=0.5, legend=False)
        if clipped.any():
            ax.scatter(table.loc[clipped, x], [floor] * clipped.sum(), marker="v", s=20, facecolors="none",
                       edgecolors=[palette[h] for h in table.loc[clipped, hue]])
    sns.lineplot(table, **common, estimator=estimator, errorbar=None, marker="o", markersize=6)
    return n


def legend_below(fig, axes):
    """One legend for the whole figure, under its panels (where it hides no data), from `axes`' labels;
    the panels' own legends are removed."""
    handles = {}
    for ax in axes:
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
        if ax.get_legend():
            ax.get_legend().remove()
    fig.legend(handles.values(), handles.keys(), loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(len(handles), 4), fontsize=8, frameon=False)


def seeds_note(n):
    """What the markers of draw_seeds_and_mean show, for a title or legend."""
    return f"large: mean of {n} seeds, small: each seed" if n > 1 else "one seed: no spread shown"
