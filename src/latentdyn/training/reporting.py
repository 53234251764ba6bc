"""What training shows and leaves behind each epoch: the history CSV and the progress bar or log lines."""

import csv
import sys
import time

from latentdyn.io import atomic_path

HISTORY_NAME = "history.csv"


def write_history(path, history):
    """All epochs' rows so far, rewritten atomically so that a killed run leaves a readable file."""
    columns = list(dict.fromkeys(key for row in history for key in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


class EpochReport:
    """A tqdm bar on a terminal; in logs, progress lines every `log_every` epochs (and at the end) instead.

    With a `label` (a member of a stack, whose members report together), always lines, each starting
    with the label."""

    def __init__(self, settings, first_epoch, label=None):
        self.settings = settings
        self.prefix = "" if label is None else f"{label}: "
        self.bar = None if label is not None else _progress_bar(settings.epochs, first_epoch)
        self.started, self.first_epoch = time.monotonic(), first_epoch

    def epoch_done(self, loop):
        settings, row = self.settings, loop.history[-1]
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(train=f"{row['train_loss']:.4f}", valid=f"{row['valid_loss']:.4f}")
            return
        if loop.epoch % settings.log_every and loop.epoch != settings.epochs and not loop.stopped:
            return
        elapsed = time.monotonic() - self.started
        remaining = elapsed / max(loop.epoch - self.first_epoch, 1) * (settings.epochs - loop.epoch)
        stop = f"  early stop (best epoch {loop.best_epoch})" if loop.stopped else ""
        print(
            f"{self.prefix}epoch {loop.epoch}/{settings.epochs}  train {row['train_loss']:.4f}  valid {row['valid_loss']:.4f}"
            f"  elapsed {elapsed:.0f}s  eta {remaining:.0f}s{stop}",
            flush=True,
        )

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _progress_bar(total, initial):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True)
