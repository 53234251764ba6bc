"""Figure saving shared by every plot: PNG and PDF side by side, written atomically."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latentdyn.io import atomic_path  # noqa: E402

MODEL_COLORS = {
    "gru": "tab:blue",
    "node": "tab:orange",
    "smoothing": "tab:gray",
    "lfads": "tab:red",
    "ndt": "tab:purple",
    "truth": "black",
}


def model_color(model_name):
    return MODEL_COLORS.get(model_name.split("-L")[0], "tab:green")


def save_figure(fig, png_path):
    """Save `fig` as `png_path` and as the PDF beside it."""
    png_path = Path(png_path)
    for path in (png_path, png_path.with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], dpi=150, bbox_inches="tight")
    plt.close(fig)
