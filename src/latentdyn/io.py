"""File handling shared by every reader and writer: atomic writes, and reads that fail in one line.

A file that exists under its final name is complete; a file that cannot be read raises InputError
naming it.
"""

import contextlib
import json
import os
import pickle
import tempfile
from pathlib import Path

from latentdyn.errors import InputError

# What h5py, pynwb, json and torch.load raise on a missing, empty, truncated or foreign file.
READ_ERRORS = (OSError, KeyError, ValueError, TypeError, EOFError, RuntimeError, pickle.UnpicklingError)
MAX_REASON_CHARS = 200


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def reading(path, what="file", errors=()):
    """Turn an error raised while opening or reading `path` inside the block into one InputError naming
    the file (`what` says what it should be: "NWB file", "checkpoint", ...). `errors` adds exception
    types of the reading library beyond READ_ERRORS. InputErrors pass through."""
    try:
        yield
    except InputError:
        raise
    except READ_ERRORS + tuple(errors) as error:
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:MAX_REASON_CHARS]
        raise InputError(path, "<file>", f"cannot read this {what} ({reason})") from error


def write_json(path, data):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
