"""Stitch sessions' binned datasets into one that a multisession model trains on, take a user's binned
file as one session, or cut a stitched model's output into one session's output (latentdyn.data.stitch).

    python scripts/stitch_sessions.py take --binned day01.h5 --dataset my_monkey_s00 --bin-ms 20 \
        --out results/data/binned/my_monkey_s00_20ms.h5
    python scripts/stitch_sessions.py stitch --sessions s00.h5 s01.h5 ... --name reaching_ms --out stitched.h5
    python scripts/stitch_sessions.py unstitch --stitched stitched.h5 --output output.h5 --session 0 \
        --session-data s00.h5 --model-name lfads-S --out s00_output.h5

A session's output is in the submission format of its own binned dataset, so the ordinary scoring
(scripts/evaluate.py) scores it. Bad input exits 2 with one line on stderr.
"""

import argparse

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, read_model_output, write_binned, write_model_output
from latentdyn.data.stitch import stitch, take_session, unstitch


@main_guard
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    taking = steps.add_parser("take")
    taking.add_argument("--binned", required=True, help="a session's binned dataset (docs/formats.md)")
    taking.add_argument("--dataset", required=True, help="the session's name, <name>_s<ss>")
    taking.add_argument("--bin-ms", type=int, required=True, help="the bin size the sessions are stitched at")
    taking.add_argument("--out", required=True)
    joining = steps.add_parser("stitch")
    joining.add_argument("--sessions", nargs="+", required=True, help="binned dataset of each session, in order")
    joining.add_argument("--name", required=True, help="the stitched dataset's name")
    joining.add_argument("--out", required=True)
    cutting = steps.add_parser("unstitch")
    cutting.add_argument("--stitched", required=True, help="the stitched binned dataset")
    cutting.add_argument("--output", required=True, help="the stitched model's output.h5")
    cutting.add_argument("--session", type=int, required=True, help="0-based session index")
    cutting.add_argument("--session-data", required=True, help="the session's own binned dataset")
    cutting.add_argument("--model-name", required=True, help="the name the session's output is scored under")
    cutting.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.step == "take":
        arrays, attrs = read_binned(args.binned)
        write_binned(args.out, arrays, take_session(attrs, args.binned, args.dataset, args.bin_ms))
        print(f"stitch_sessions: took {args.binned} as session {args.dataset}: wrote {args.out}")
        return
    if args.step == "stitch":
        arrays, attrs = stitch([(*read_binned(path), path) for path in args.sessions], args.name)
        write_binned(args.out, arrays, attrs)
        print(f"stitch_sessions: wrote {args.out} ({len(args.sessions)} sessions, {arrays['train_spikes_heldin'].shape[-1]} held-in units)")
        return
    _, stitched_attrs = read_binned(args.stitched, keys=[])
    outputs, output_attrs = read_model_output(args.output)
    session_data, session_attrs = read_binned(args.session_data)
    output_attrs.update(dataset=session_attrs["dataset"], model=args.model_name, stitched_output=args.output,
                        session=args.session)
    write_model_output(args.out, unstitch(outputs, stitched_attrs, args.session), output_attrs, session_data)
    print(f"stitch_sessions: wrote session {args.session}'s output {args.out}")


if __name__ == "__main__":
    main()
