"""Render a result table (CSV) as the HTML page the report shows: glossary, rounded rows, seeds' spread."""

import argparse

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.plots.tables import render_table


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", required=True, help="results/tables/<name>.csv")
    parser.add_argument("--title", required=True)
    parser.add_argument("--out", required=True, help="the .html page to write")
    args = parser.parse_args()
    render_table(args.table, args.out, args.title)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
