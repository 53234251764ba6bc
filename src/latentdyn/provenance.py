"""What produced a set of results, stated on the report's landing page: the commit, when, and the config
files given over the paper config."""

import subprocess
from datetime import datetime, timezone
from pathlib import Path

DEMO_CONFIG = "demo.yaml"
PAPER_CONFIG = "config/config.yaml"  # what every other config file is given over


def report_provenance(repo, configfiles):
    """{commit, date, configfiles, demo} for the checkout at `repo` and the `--configfile`s given."""
    names = [Path(path).name for path in configfiles or []]
    return {
        "commit": git_commit(repo),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "configfiles": [name for name in (_shown(path, repo) for path in configfiles or []) if name != PAPER_CONFIG],
        "demo": DEMO_CONFIG in names,
    }


def git_commit(repo):
    """The checkout's commit, with "+ uncommitted changes" when its tracked files differ; "unknown" outside
    a git checkout (an unpacked archive)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        if head.returncode != 0:
            return "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def _shown(path, repo):
    """`path` relative to the checkout when it lies inside it (config/demo.yaml), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path(repo).resolve()))
    except ValueError:
        return str(path)
