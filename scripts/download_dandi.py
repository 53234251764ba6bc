"""Fetch an NLB dandiset from DANDI into --out-dir, or adopt the copy in --local-dir when given, then
write the manifest JSON that later rules read.

    python scripts/download_dandi.py --dandiset 000128 --version 0.220113.0400 \
        --out-dir results/data/nwb/mc_maze [--local-dir DIR] --manifest results/data/nwb/mc_maze/manifest.json \
        [--local-dir-key nlb_sources.mc_maze.local_dir] [--api-url URL] [--probe-timeout 10]

DANDI unreachable: one line on stderr, exit 1. Bad local files: one line, exit 2. No manifest either way.
"""

import argparse
import sys

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.dandi_download import (DANDI_API_URL, LOCAL_DIR_KEY, DandiUnavailableError,
                                           download_dandiset, register_local_dandiset)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dandiset", required=True, help="dandiset id, e.g. 000128")
    parser.add_argument("--version", required=True, help="pinned version, e.g. 0.220113.0400")
    parser.add_argument("--manifest", required=True, help="manifest JSON to write")
    parser.add_argument("--out-dir", required=True, help="download into OUT_DIR/<dandiset>/")
    parser.add_argument("--local-dir", help="use this copy of the dandiset (its sub-*/ files) instead")
    parser.add_argument("--local-dir-key", default=LOCAL_DIR_KEY,
                        help="config key the error message tells the user to set")
    parser.add_argument("--api-url", default=DANDI_API_URL)
    parser.add_argument("--probe-timeout", type=float, default=10.0,
                        help="seconds to wait for the DANDI API before giving up")
    return parser.parse_args(argv)


@main_guard
def main(argv=None):
    args = parse_args(argv)
    if args.local_dir:
        manifest = register_local_dandiset(args.local_dir, args.manifest, dandiset_id=args.dandiset,
                                           version=args.version)
    else:
        try:
            manifest = download_dandiset(args.dandiset, args.version, args.out_dir, args.manifest,
                                         api_url=args.api_url, local_dir_key=args.local_dir_key,
                                         probe_timeout_s=args.probe_timeout)
        except DandiUnavailableError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
    print(f"download_dandi: {len(manifest['files'])} NWB files of dandiset {args.dandiset} "
          f"version {args.version} under {manifest['root']}")


if __name__ == "__main__":
    main()
