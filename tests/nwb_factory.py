"""Write small NWB files with pynwb in the NLB layout, for tests that need an NWB input."""

from datetime import datetime, timezone

import numpy as np
from pynwb import NWBHDF5IO, NWBFile, TimeSeries


def write_nwb(path, trials, spike_times, heldout=None, obs_intervals=None, behavior=None):
    """Write an NWB file and return its path.

    trials: column name -> one value per trial; needs start_time and stop_time (s).
    spike_times: one array of spike times (s) per unit.
    heldout: one bool per unit, or None for a units table without a 'heldout' column.
    obs_intervals: one (k, 2) array per unit, or None for no 'obs_intervals' column.
    behavior: name -> (samples, channels) array at 1 kHz from t = 0, in processing/behavior.
    """
    nwb = NWBFile(session_description="latentdyn test file", identifier=str(path),
                  session_start_time=datetime(2021, 1, 1, tzinfo=timezone.utc))
    extra_columns = [name for name in trials if name not in ("start_time", "stop_time")]
    for name in extra_columns:
        nwb.add_trial_column(name=name, description=name)
    for row in range(len(trials["start_time"])):
        nwb.add_trial(**{name: values[row] for name, values in trials.items()})
    if heldout is not None:
        nwb.add_unit_column(name="heldout", description="held-out unit")
    for unit, times in enumerate(spike_times):
        columns = {"spike_times": np.asarray(times, dtype=np.float64)}
        if heldout is not None:
            columns["heldout"] = bool(heldout[unit])
        if obs_intervals is not None:
            columns["obs_intervals"] = np.asarray(obs_intervals[unit], dtype=np.float64)
        nwb.add_unit(**columns)
    if behavior:
        module = nwb.create_processing_module(name="behavior", description="behaviour")
        for name, data in behavior.items():
            module.add(TimeSeries(name=name, data=np.asarray(data), unit="a.u.", rate=1000.0,
                                  starting_time=0.0))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path
