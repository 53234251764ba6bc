"""The simulated reaching session: MC_Maze NWB layout, splits, spike statistics, behaviour, seeds."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO

from latentdyn.data import reaching
from latentdyn.data.reaching import ReachingConfig, simulate_reaching
from latentdyn.errors import InputError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "simulate_reaching.py"
CONFIG = ReachingConfig(n_directions=4, trials_per_direction=10, n_neurons=20, heldout_fraction=0.25,
                        split_fractions=(0.6, 0.2, 0.2), seed=3)
# what nlb_tools' loader and make_tensors read from an MC_Maze file
MAZE_TRIAL_FIELDS = {"start_time", "stop_time", "split", "move_onset_time", "target_on_time",
                     "go_cue_time", "trial_type", "trial_version", "maze_id", "success", "rt", "delay"}
WINDOW_S = (-0.25, 0.45 + 0.2)  # mc_maze alignment window plus forward prediction


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reaching")
    nwb_path, truth_path = folder / "reach.nwb", folder / "reach_truth.h5"
    session = reaching.make_reaching_dataset(nwb_path, truth_path, CONFIG)
    with NWBHDF5IO(str(nwb_path), "r") as io:
        nwb = io.read()
        trials = nwb.trials.to_dataframe()
        units = nwb.units.to_dataframe()
        behavior = {name: (series.timestamps[()], series.data[()])
                    for name, series in nwb.processing["behavior"].data_interfaces.items()}
    with h5py.File(truth_path, "r") as f:
        truth = {key: f[key][()] for key in f}
        truth_attrs = dict(f.attrs)
    return dict(session=session, trials=trials, units=units, behavior=behavior, truth=truth,
                truth_attrs=truth_attrs, folder=folder)


def test_nwb_has_every_field_mc_maze_binning_reads(written):
    trials, units, behavior = written["trials"], written["units"], written["behavior"]
    assert MAZE_TRIAL_FIELDS <= set(trials.columns)
    assert {"spike_times", "obs_intervals", "heldout"} <= set(units.columns)
    assert set(behavior) == {"hand_pos", "hand_vel", "cursor_pos"}
    assert units.heldout.sum() == 5

    end_s = units.obs_intervals.iloc[0][-1][-1]
    grid = np.arange(round(end_s * 1000)) / 1000
    for timestamps, data in behavior.values():
        np.testing.assert_allclose(timestamps, grid, atol=1e-9)
        assert data.shape == (grid.size, 2)
    for spikes in units.spike_times:
        assert spikes.min() > 0 and spikes.max() < end_s and np.all(np.diff(spikes) >= 0)

    # every analysis window (and its forward-prediction tail) lies inside its own trial
    move = trials.move_onset_time.to_numpy()
    assert np.all(move + WINDOW_S[0] >= trials.start_time)
    assert np.all(move + WINDOW_S[1] <= trials.stop_time)
    assert np.all(trials.stop_time.to_numpy()[:-1] < trials.start_time.to_numpy()[1:])
    assert np.all((trials.target_on_time < trials.go_cue_time) & (trials.go_cue_time < move))


def test_truth_sidecar_matches_the_nwb(written):
    truth, units, behavior = written["truth"], written["units"], written["behavior"]
    assert set(truth) == {"timestamps", "rates", "latents"}
    np.testing.assert_array_equal(truth["timestamps"], behavior["hand_vel"][0])
    assert truth["rates"].shape == (truth["timestamps"].size, len(units))
    assert truth["latents"].shape == (truth["timestamps"].size, 13)
    attrs = written["truth_attrs"]
    assert attrs["generator"] == reaching.GENERATOR
    assert json.loads(attrs["config"])["seed"] == CONFIG.seed
    np.testing.assert_array_equal(attrs["heldout"], units.heldout.to_numpy())
    np.testing.assert_allclose(
        truth["rates"], np.exp(attrs["log_rate_baseline"] + truth["latents"] @ attrs["log_rate_weights"].T),
        rtol=1e-4)


def test_trial_counts_per_split_and_direction(written):
    trials = written["trials"]
    counts = trials.groupby(["trial_type", "split"]).size().unstack(fill_value=0)
    for direction in range(CONFIG.n_directions):
        row = counts.loc[direction]
        assert (row["train"], row["val"], row["test"]) == (6, 2, 2)
    assert (trials.maze_id == trials.trial_type).all() and trials.success.all()


def test_spike_counts_follow_the_true_rates(written):
    """Counts in 100 ms blocks against the integrated true rate: Poisson chi-square per degree ~ 1."""
    rates, units = written["truth"]["rates"], written["units"]
    block = 100
    n_blocks = rates.shape[0] // block
    expected = rates[:n_blocks * block].reshape(n_blocks, block, -1).sum(axis=1) * 1e-3
    observed = np.stack([np.bincount((spikes * 1000).astype(int) // block, minlength=n_blocks + 1)
                         [:n_blocks] for spikes in units.spike_times], axis=1)
    chi_square_per_dof = np.mean((observed - expected) ** 2 / expected)
    assert 0.9 < chi_square_per_dof < 1.1
    totals_z = (observed.sum(0) - expected.sum(0)) / np.sqrt(expected.sum(0))
    assert np.all(np.abs(totals_z) < 5)
    assert abs(observed.sum() - expected.sum()) < 4 * np.sqrt(expected.sum())


def test_velocity_is_a_linear_readout_of_the_latents(written):
    latents, attrs = written["truth"]["latents"], written["truth_attrs"]
    (timestamps, velocity), (_, position) = written["behavior"]["hand_vel"], written["behavior"]["hand_pos"]
    np.testing.assert_allclose(velocity, latents @ attrs["velocity_readout"].T, atol=1e-3)
    trials = written["trials"]
    events_ms = (np.round(trials[c].to_numpy() * 1000).astype(int)
                 for c in ("start_time", "go_cue_time", "move_onset_time", "stop_time"))
    for start, go_cue, move, stop, target in zip(*events_ms, trials.target_pos):
        np.testing.assert_allclose(np.diff(position[start:stop], axis=0), velocity[start:stop - 1] * 1e-3,
                                   atol=1e-9)
        assert np.abs(position[start]).max() < 1e-9  # every reach starts at the centre
        assert np.linalg.norm(velocity[go_cue:move], axis=1).max() < 1  # still until it moves (mm/s)
        assert np.linalg.norm(position[stop - 1] - target) < 30  # ends near its 100 mm target


def test_same_seed_same_session_other_seed_differs():
    first, again = simulate_reaching(CONFIG), simulate_reaching(CONFIG)
    other = simulate_reaching(dataclasses.replace(CONFIG, seed=CONFIG.seed + 1))
    np.testing.assert_array_equal(first.rates, again.rates)
    np.testing.assert_array_equal(first.trials["split"], again.trials["split"])
    assert all(np.array_equal(a, b) for a, b in zip(first.spike_times, again.spike_times))
    assert not np.array_equal(first.trials["trial_type"], other.trials["trial_type"])


@pytest.mark.parametrize("params, field", [
    ({"n_directions": 4, "color": 1}, "color"),
    ({"split_fractions": [0.5, 0.2, 0.2]}, "split_fractions"),
    ({"n_neurons": 4, "heldout_fraction": 0.9}, "heldout_fraction"),
])
def test_bad_config_names_the_field(params, field):
    with pytest.raises(InputError, match=f"field '{field}'"):
        ReachingConfig.from_mapping(params, "config.yaml")


@pytest.fixture
def cli(monkeypatch):
    """The script loaded in-process (its _bootstrap import needs scripts/ on the path)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("simulate_reaching", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_both_files(tmp_path, cli):
    params = json.dumps({"n_directions": 2, "trials_per_direction": 4, "n_neurons": 6, "seed": 1})
    cli.main(["--out", str(tmp_path / "sim.nwb"), "--params-json", params, "--seed", "5"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.nwb", "sim_truth.h5"]
    with h5py.File(tmp_path / "sim_truth.h5", "r") as f:
        assert json.loads(f.attrs["config"])["seed"] == 5


def test_cli_bad_parameter_exits_2_with_one_line(tmp_path, cli, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--out", str(tmp_path / "sim.nwb"), "--params-json", '{"n_directions": 4, "colour": 1}'])
    stderr = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(stderr.strip().splitlines()) == 1 and "field 'colour'" in stderr
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_nwb(tmp_path):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("")
    with pytest.raises(OSError):
        reaching.make_reaching_dataset(tmp_path / "sim.nwb", blocker / "sim_truth.h5",
                                       ReachingConfig(n_directions=2, trials_per_direction=2, n_neurons=4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_directory"]
