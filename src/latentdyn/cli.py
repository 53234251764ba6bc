"""Shared behaviour of the entry points in scripts/: one clear line on bad input or config, exit code 2."""

import functools
import sys

from latentdyn.errors import ConfigError, InputError


def main_guard(main):
    """Run `main`; turn an InputError or ConfigError into one line on stderr and exit status 2 (no traceback:
    the message already names the file, field or key to fix)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (InputError, ConfigError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper
