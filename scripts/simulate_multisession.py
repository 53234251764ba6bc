"""Write a simulated multisession reaching set (latentdyn.data.multisession): one MC_Maze-layout NWB file
and its ground-truth sidecar per session.

    python scripts/simulate_multisession.py --params-json '{"n_sessions": 6, "seed": 0}' \
        --nwb s00.nwb s01.nwb ... --truth s00_truth.h5 s01_truth.h5 ...

Bad parameters exit 2 with one line on stderr.
"""

import argparse
import json

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.multisession import MultisessionConfig, make_multisession_dataset
from latentdyn.errors import InputError


@main_guard
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params-json", default="{}", help="JSON object of MultisessionConfig parameters")
    parser.add_argument("--nwb", nargs="+", required=True, help="NWB file of each session, in session order")
    parser.add_argument("--truth", nargs="+", required=True, help="ground-truth sidecar of each session")
    args = parser.parse_args(argv)
    try:
        params = json.loads(args.params_json)
    except json.JSONDecodeError as error:
        raise InputError("--params-json", "<json>", f"not valid JSON ({error})") from None
    config = MultisessionConfig.from_mapping(params, source="--params-json")
    sessions = make_multisession_dataset(args.nwb, args.truth, config)
    units = ", ".join(str(len(session.heldout)) for session in sessions)
    print(f"simulate_multisession: wrote {len(sessions)} sessions ({units} units)")


if __name__ == "__main__":
    main()
