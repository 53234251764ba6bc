"""Figure saving shared by every plot: PNG and PDF side by side, written atomically."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latentdyn.io import atomic_path  # noqa: E402


def save_figure(fig, png_path):
    """Save `fig` as `png_path` and as the PDF beside it."""
    png_path = Path(png_path)
    for path in (png_path, png_path.with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], dpi=150, bbox_inches="tight")
    plt.close(fig)
