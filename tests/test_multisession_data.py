"""The simulated multisession reaching set: shared dynamics, per-session neurons, drift, rate changes,
partly overlapping conditions, one NWB per session read by the ordinary binning path."""

import dataclasses

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO

from latentdyn.data.multisession import MultisessionConfig, make_multisession_dataset, session_neurons
from latentdyn.data.nlb import make_binned_tensors
from latentdyn.data.nlb_specs import dataset_spec
from latentdyn.errors import InputError

CONFIG = MultisessionConfig(n_sessions=3, n_directions=4, directions_per_session=3, trials_per_direction=5,
                            n_neurons=(10, 16), pool_size=30, tuning_drift=0.1, rate_change=0.3, seed=2)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multisession")
    nwb = [folder / f"s{s}.nwb" for s in range(CONFIG.n_sessions)]
    truth = [folder / f"s{s}_truth.h5" for s in range(CONFIG.n_sessions)]
    sessions = make_multisession_dataset(nwb, truth, CONFIG)
    return dict(sessions=sessions, nwb=nwb, truth=truth)


def test_sessions_share_dynamics_and_behaviour_readout(written):
    attrs = []
    for path in written["truth"]:
        with h5py.File(path, "r") as f:
            attrs.append(dict(f.attrs))
    for other in attrs[1:]:
        np.testing.assert_array_equal(other["rotational_dynamics_matrix"], attrs[0]["rotational_dynamics_matrix"])
        np.testing.assert_array_equal(other["velocity_readout"], attrs[0]["velocity_readout"])
    # velocity is the same linear readout of the latents in every session
    for session in written["sessions"]:
        np.testing.assert_allclose(session.hand_vel, session.latents @ attrs[0]["velocity_readout"].T, atol=1e-3)


def test_each_session_has_its_own_neurons_and_its_rates_follow_them(written):
    counts = [len(session.heldout) for session in written["sessions"]]
    assert all(10 <= n <= 16 for n in counts) and len(set(counts)) > 1
    for s, session in enumerate(written["sessions"]):
        pool_index = session.generator_attrs["pool_index"]
        assert len(set(pool_index)) == len(pool_index) == counts[s]
        g = session.generator_attrs
        expected = np.exp(g["log_rate_baseline"] + session.latents @ g["log_rate_weights"].T)
        np.testing.assert_allclose(session.rates, expected, rtol=1e-3)
        assert session.heldout.sum() == round(0.25 * counts[s])


def test_tuning_drifts_as_a_random_walk_and_baselines_change():
    config = dataclasses.replace(CONFIG, n_sessions=4, n_neurons=(30, 30), tuning_drift=0.2)
    neurons = session_neurons(config)

    def weights(s):  # in pool order: every session records the whole pool here
        pool_index, units = neurons[s]
        return units.log_weights[np.argsort(pool_index)], units.log_baseline[np.argsort(pool_index)]

    for lag in (1, 3):
        step = weights(lag)[0] - weights(0)[0]
        assert step.std() == pytest.approx(0.2 * np.sqrt(lag), rel=0.25)
    assert (weights(1)[1] - weights(0)[1]).std() == pytest.approx(0.3 * np.sqrt(2), rel=0.3)
    still = session_neurons(dataclasses.replace(config, tuning_drift=0.0, rate_change=0.0))
    np.testing.assert_array_equal(still[3][1].log_weights[np.argsort(still[3][0])],
                                  still[0][1].log_weights[np.argsort(still[0][0])])


def test_conditions_overlap_only_partly(written):
    presented = []
    for s, path in enumerate(written["nwb"]):
        with NWBHDF5IO(str(path), "r") as io:
            trial_types = set(io.read().trials.to_dataframe().trial_type)
        assert trial_types == set(CONFIG.directions(s)) and len(trial_types) == 3
        presented.append(trial_types)
    assert set.union(*presented) == set(range(4))
    assert all(0 < len(a & b) < 3 for i, a in enumerate(presented) for b in presented[i + 1:])


def test_ordinary_binning_reads_every_session_with_its_true_rates(written):
    for session, nwb, truth in zip(written["sessions"], written["nwb"], written["truth"]):
        arrays, attrs = make_binned_tensors([nwb], dataset_spec("mc_maze"), 20, "val", truth_path=truth)
        # condition names, by which stitching matches the sessions' conditions
        assert len(attrs["conditions"]) == len(arrays["train_cond_idx"]) == 3
        n_heldout = session.heldout.sum()
        assert arrays["train_spikes_heldin"].shape[-1] == len(session.heldout) - n_heldout
        assert arrays["train_spikes_heldout"].shape[-1] == n_heldout
        assert arrays["train_true_rates_heldin"].shape == arrays["train_spikes_heldin"].shape
        assert "train_behavior" in arrays


def test_bad_config_names_the_field():
    with pytest.raises(InputError, match="n_neurons"):
        MultisessionConfig.from_mapping({"n_neurons": [20, 10]})
    with pytest.raises(InputError, match="trials_per_direction_by_session"):
        MultisessionConfig.from_mapping({"n_sessions": 2, "trials_per_direction_by_session": [3]})
    with pytest.raises(InputError, match="sessions_count"):
        MultisessionConfig.from_mapping({"sessions_count": 2})
