"""Write a simulated reaching session as an MC_Maze-layout NWB file plus its ground-truth sidecar.

    python scripts/simulate_reaching.py --out reaching.nwb [--truth reaching_truth.h5] \
        [--params-json '{"n_directions": 8, "seed": 0}'] [--n-directions 8 --seed 0 ...]

--params-json holds ReachingConfig parameters (latentdyn.data.reaching); flags override them.
Bad parameters exit 2 with one line on stderr.
"""

import argparse
import json

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.reaching import ReachingConfig, make_reaching_dataset, truth_path_for
from latentdyn.errors import InputError


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="NWB file to write")
    parser.add_argument("--truth", help="ground-truth HDF5 (default: <out name>_truth.h5 beside it)")
    parser.add_argument("--params-json", default="{}", help="JSON object of ReachingConfig parameters")
    parser.add_argument("--n-directions", type=int)
    parser.add_argument("--trials-per-direction", type=int)
    parser.add_argument("--n-neurons", type=int)
    parser.add_argument("--heldout-fraction", type=float)
    parser.add_argument("--split-fractions", type=float, nargs=3, metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--seed", type=int)
    return parser.parse_args(argv)


@main_guard
def main(argv=None):
    args = parse_args(argv)
    try:
        params = json.loads(args.params_json)
    except json.JSONDecodeError as error:
        raise InputError("--params-json", "<json>", f"not valid JSON ({error})") from None
    if not isinstance(params, dict):
        raise InputError("--params-json", "<json>", "must be a JSON object of parameters")
    overrides = {name: getattr(args, name) for name in (
        "n_directions", "trials_per_direction", "n_neurons", "heldout_fraction", "split_fractions",
        "seed")}
    params.update({name: value for name, value in overrides.items() if value is not None})
    config = ReachingConfig.from_mapping(params, source="--params-json and flags")
    truth = args.truth or truth_path_for(args.out)
    session = make_reaching_dataset(args.out, truth, config)
    print(f"simulate_reaching: wrote {args.out} and {truth} ({len(session.trials['start_time'])} trials, "
          f"{config.n_neurons} units, {len(session.timestamps) / 1000:.0f} s)")


if __name__ == "__main__":
    main()
