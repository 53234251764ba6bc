"""Shared behaviour of the entry points in scripts/: one clear line on bad input, exit code 2."""

import functools
import sys

from latentdyn.errors import InputError


def main_guard(main):
    """Run `main`; turn an InputError into one line on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper
