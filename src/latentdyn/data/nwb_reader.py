"""Read NWB files (pynwb) onto one 1 ms timeline, the way nlb_tools' `NWBDataset` loads them.

Rules follow neurallatents/nlb_tools `nlb_tools/nwb_interface.py` (`NWBDataset.__init__`, `load`,
`resample`): spikes counted per 1 ms sample by truncating `round(t * 1000, 6)`; the span of a file is
`round(1000 * last obs_intervals end)` samples; a unit group (held-in or held-out) is NaN outside the
`obs_intervals` of its first unit; several files are laid end to end, each starting on the next
100 ms boundary at least 50 ms after the previous one ends, with NaN in between. Only what a tensor
needs is read, and continuous signals one at a time, so a 700 MB NLB file bins in a few GB.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from hdmf.build.errors import BuildError, ConstructError
from pynwb import NWBHDF5IO, ProcessingModule, TimeSeries
from pynwb.core import MultiContainerInterface

from latentdyn.errors import InputError
from latentdyn.io import reading

NS_PER_MS = 1_000_000
NWB_ERRORS = (BuildError, ConstructError)  # pynwb's errors on a file it cannot map to NWB objects


@dataclass
class UnitGroup:
    """Held-in or held-out units of all files: one column per unit id, in id order (as nlb_tools)."""

    unit_ids: np.ndarray
    spikes_ms: list[np.ndarray]  # per unit: global 1 ms sample of every spike
    observed_ms: np.ndarray  # bool per global 1 ms sample; False reads as NaN
    file_rows: list[dict[int, int]]  # per unit: file index -> row in that file's units table

    def binned_counts(self, bin_ms, n_bins):
        """Spike counts per bin (uint16) and which bins are observed (a bin is NaN if its first ms is)."""
        counts = np.zeros((n_bins, len(self.unit_ids)), dtype=np.uint16)
        for column, spikes in enumerate(self.spikes_ms):
            counts[:, column] = np.bincount(spikes // bin_ms, minlength=n_bins)
        return counts, self.observed_ms[::bin_ms]


@dataclass
class Recording:
    """The trials and units of one or more NWB files, placed on one global 1 ms timeline."""

    paths: tuple[Path, ...]  # timeline order
    offsets_ms: tuple[int, ...]  # where each file's time zero lies on the timeline
    file_ms: tuple[int, ...]  # each file's own span (samples from its time zero)
    n_ms: int  # samples on the timeline
    trials: pd.DataFrame  # all trial tables stacked in timeline order; row = trial id
    trial_file: np.ndarray  # file index of each trial row
    heldin: UnitGroup
    heldout: UnitGroup | None

    def require_trial_field(self, field, purpose):
        if field not in self.trials.columns:
            raise InputError(self.paths[0], field, f"missing from the trials table; needed {purpose}")

    def trial_time_ns(self, field):
        """Times of a trial field on the timeline in integer ns, and which trials have one."""
        seconds = pd.to_numeric(self.trials[field], errors="coerce").to_numpy(dtype=np.float64)
        times = pd.to_timedelta(seconds, unit="s").to_numpy("timedelta64[ns]")
        valid = ~np.isnat(times)
        ns = np.where(valid, times.astype(np.int64), 0)
        return ns + np.asarray(self.offsets_ms)[self.trial_file] * NS_PER_MS, valid

    def signal_ms(self, name):
        """A continuous signal on the 1 ms timeline (float64, NaN where absent) and its channel names."""
        values, names = None, None
        for index, path in enumerate(self.paths):
            with reading(path, "NWB file", NWB_ERRORS), NWBHDF5IO(str(path), "r") as io:
                series = _timeseries_by_name(io.read()).get(name)
                if series is None:
                    continue
                data, samples, channels = _read_series(path, name, series, self.file_ms[index])
            order = np.argsort(channels, kind="stable")  # nlb_tools sorts channel columns by name
            if values is None:
                values = np.full((self.n_ms, len(channels)), np.nan)
                names = [channels[i] for i in order]
            elif [channels[i] for i in order] != names:
                raise InputError(path, name, f"channels {channels} differ from the first file's {names}")
            values[self.offsets_ms[index] + samples] = data[:, order]
        if values is None:
            raise InputError(self.paths[0], name, "no such continuous signal in processing/ or acquisition/; "
                                                  "needed as behaviour")
        return values, names


def read_recording(nwb_paths):
    """Read trials and units of NWB files, laid on one timeline in file-name order (as nlb_tools globs)."""
    paths = tuple(sorted((Path(p) for p in nwb_paths), key=lambda p: (p.name, str(p))))
    if not paths:
        raise InputError("<none>", "nwb_paths", "no NWB file given")
    files = [_read_file(path) for path in paths]
    offsets = [0]
    for previous in files[:-1]:
        # nwb_interface.NWBDataset.__init__: next block starts at ceil((last + 50 ms) / 100 ms) * 100 ms
        past_end_s = (offsets[-1] + previous["n_ms"] - 1) * NS_PER_MS / 1e9 + round(50 / 1000, 4)
        offsets.append(int(np.ceil(past_end_s * 10) * 100))
    n_ms = offsets[-1] + files[-1]["n_ms"]
    trials = pd.concat([f["trials"] for f in files], ignore_index=True)
    trial_file = np.concatenate([np.full(len(f["trials"]), i) for i, f in enumerate(files)])
    if not any(f["heldout"] is not None for f in files):
        raise InputError(paths[0], "heldout", "units table has no 'heldout' column; needed to split "
                                              "held-in from held-out units")
    heldin = _unit_group(files, offsets, n_ms, want_heldout=False)
    heldout = _unit_group(files, offsets, n_ms, want_heldout=True)
    if heldin is None:
        raise InputError(paths[0], "heldout", "every unit is held out; held-in units are the model input")
    return Recording(paths, tuple(offsets), tuple(f["n_ms"] for f in files), n_ms, trials, trial_file,
                     heldin, heldout)


def _read_file(path):
    """The trial table and unit columns of one file (spike times, obs_intervals, heldout, ids)."""
    if not path.exists():
        raise InputError(path, "<file>", "NWB file does not exist")
    with reading(path, "NWB file", NWB_ERRORS), NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        if nwb.trials is None:
            raise InputError(path, "trials", "file has no trials table; needed for trial windows")
        units = nwb.units
        if units is None or "spike_times" not in units.colnames:
            raise InputError(path, "spike_times", "file has no units table with spike times; needed for "
                                                   "spike counts")
        trials = nwb.trials.to_dataframe().reset_index(drop=True)
        ends = units.spike_times_index.data[:]
        flat = units.spike_times.data[:]
        spike_times = np.split(flat, ends[:-1])
        obs = None
        if "obs_intervals" in units.colnames:
            obs_ends = units.obs_intervals_index.data[:]
            obs = np.split(np.asarray(units.obs_intervals.data[:], dtype=np.float64).reshape(-1, 2),
                           obs_ends[:-1])
        heldout = units["heldout"].data[:].astype(bool) if "heldout" in units.colnames else None
        ids = units.id.data[:]
    if obs is not None:
        # nwb_interface.load: end_time = round(max over units of the last interval's end * 1000) ms
        n_ms = int(np.round(max(intervals[-1, 1] for intervals in obs) * 1000))
    else:  # no obs_intervals: observed from 0 to the last trial end or spike (nlb_tools requires them)
        last = max(trials["stop_time"].max(), max((s[-1] for s in spike_times if len(s)), default=0.0))
        n_ms = int(np.round(last * 1000)) + 1
    return {"path": path, "trials": trials, "spike_times": spike_times, "obs": obs,
            "heldout": heldout, "ids": ids, "n_ms": n_ms}


def _unit_group(files, offsets, n_ms, want_heldout):
    """Gather one group's units across files; ids must agree between files holding the group."""
    spikes_by_id, rows_by_id = {}, {}
    observed = np.zeros(n_ms, dtype=bool)
    group_ids = None
    for index, f in enumerate(files):
        heldout = f["heldout"] if f["heldout"] is not None else np.zeros(len(f["ids"]), dtype=bool)
        rows = np.flatnonzero(heldout == want_heldout)
        if len(rows) == 0:
            continue
        ids = sorted(int(i) for i in f["ids"][rows])
        if group_ids is not None and ids != group_ids:
            raise InputError(f["path"], "units", "unit ids of the "
                             f"{'held-out' if want_heldout else 'held-in'} group differ from another file's")
        group_ids = ids
        offset, span = offsets[index], f["n_ms"]
        for row in rows:
            unit_id = int(f["ids"][row])
            samples = np.trunc(np.round(f["spike_times"][row] * 1000, 6)).astype(np.int64)
            samples = samples[(samples >= 0) & (samples < span)]
            spikes_by_id.setdefault(unit_id, []).append(samples + offset)
            rows_by_id.setdefault(unit_id, {})[index] = int(row)
        if f["obs"] is None:
            observed[offset:offset + span] = True
        else:
            for start, end in f["obs"][rows[0]]:  # first unit of the group, in table order
                first = max(int(np.ceil(round(start * 1000, 6))), 0)
                last = min(int(np.floor(round(end * 1000, 6))), span)
                observed[offset + first:offset + last] = True
    if group_ids is None:
        return None
    # spikes on unobserved samples are NaN at 1 ms, so nlb_tools' resample counts them as 0
    spikes_ms = [np.concatenate(spikes_by_id[i]) for i in group_ids]
    return UnitGroup(
        unit_ids=np.array(group_ids),
        spikes_ms=[spikes[observed[spikes]] for spikes in spikes_ms],
        observed_ms=observed,
        file_rows=[rows_by_id[i] for i in group_ids],
    )


def _timeseries_by_name(nwb):
    """Every TimeSeries under the file, named as nlb_tools names them ('<container>_<series>' in a
    multi-container such as Position)."""
    found = {}

    def walk(node):
        for child in node.children:
            if isinstance(child, TimeSeries):
                found[child.name] = child
            elif isinstance(child, ProcessingModule):
                walk(child)
            elif isinstance(child, MultiContainerInterface):
                for series in child.children:
                    if isinstance(series, TimeSeries):
                        found[f"{child.name}_{series.name}"] = series

    walk(nwb)
    return found


def _read_series(path, name, series, span_ms):
    """Data, 1 ms sample index and channel names of a TimeSeries that must lie on the file's 1 ms grid."""
    data = np.asarray(series.data[()], dtype=np.float64)
    data = data.reshape(len(data), -1)
    if series.timestamps is not None:
        seconds = np.asarray(series.timestamps[()], dtype=np.float64)
    else:
        seconds = np.arange(len(data)) / series.rate + series.starting_time
    rounded = np.round(seconds, 6)
    samples = np.round(rounded * 1000).astype(np.int64)
    on_grid = np.isclose(rounded * 1000, samples, rtol=0, atol=1e-6)
    if not (on_grid.all() and samples.min() >= 0 and samples.max() < span_ms):
        raise InputError(path, name, "timestamps are not on the recording's 1 ms grid within its "
                                     f"observed span (0..{span_ms} ms); needed to bin it as behaviour")
    comments = series.comments or ""
    if "columns=" in comments:  # nlb_tools reads channel names from 'columns=[a,b]' in the comments
        channels = comments.split("[")[-1].split("]")[0].split(",")
    else:
        channels = [f"{i:04d}" for i in range(data.shape[1])]
    return data, samples, channels
