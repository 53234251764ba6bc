"""AutoLFADS on a real local Ray (models/autolfads): a tiny population (2 CPU workers, LFADS of a few
units, generations of 2 epochs) searched end to end, the tournament and clones as population.csv records
them, the new learning rate in the optimiser after a clone, its figure, a killed driver resumed by
Tuner.restore with the stopper's state intact, and a fresh search blind to what an earlier one left."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from random_counts import poisson_counts

import latentdyn
from latentdyn.data.format import validate_model_output
from latentdyn.data.prepare import prepare
from latentdyn.errors import ConfigError
from latentdyn.models.autolfads.tune import (
    DECISIONS,
    EXPERIMENT,
    IDENTITY_FILE,
    POPULATION_HISTORY,
    STOPPER_FILE,
    first_exploit_epoch,
    run_population,
)
from latentdyn.models.kinds import resolve_model
from latentdyn.models.lfads.model import build
from latentdyn.models.pipeline import train_and_predict
from latentdyn.plots.run_figures import plot_population_search
from latentdyn.training.checkpoints import FINAL_NAME, STATE_DIR
from latentdyn.training.reporting import HISTORY_NAME
from workflow_api import REPO

DATA = poisson_counts({"train": 24, "eval": 6}, heldout=3, heldin=5, bins=8, forward_bins=3, seed=0)
ATTRS = {"dataset": "random", "bin_width_s": 0.02}
TINY = {"ic_enc_dim": 8, "ci_enc_dim": 8, "con_dim": 8, "co_dim": 2, "ic_dim": 8, "gen_dim": 8, "fac_dim": 4,
        "batch_size": 8, "kl_increase_epochs": 0, "l2_increase_epochs": 0, "posterior_samples": 2}


def tiny_params(epochs=6, **pbt):
    return resolve_model("auto", {"kind": "autolfads", "epochs": epochs, **TINY,
                                  "pbt": {"workers": 2, "generation_epochs": 2, **pbt}})


@pytest.fixture
def two_cpus():
    """Ray gets the job's CPUs from torch's thread count: two workers of one CPU each."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def read_population(run_dir):
    rows = list(csv.DictReader(open(run_dir / POPULATION_HISTORY)))
    return {(int(row["generation"]), int(row["worker"])): row for row in rows}


def test_defaults_are_the_published_schedule():
    params = resolve_model("auto", {"kind": "autolfads"})
    pbt = params["pbt"]
    assert (pbt["workers"], pbt["generation_epochs"], pbt["gpus_per_worker"]) == (20, 25, 0.5)
    assert (pbt["stop_patience"], pbt["stop_tolerance"], params["epochs"] // 25) == (4, 5e-4, 50)
    assert first_exploit_epoch(params) == 80 + 25
    assert params["early_stopping"] is None and params["scheduler"] == {"kind": "none"}
    assert params["monitor"] == "valid_recon" and params["smoothing"] == 0.3
    with pytest.raises(ConfigError, match="models.auto.pbt.search"):
        resolve_model("auto", {"kind": "autolfads", "pbt": {"search": {"gen_dim": {"low": 1, "high": 2, "explore_weight": 0.1}}}})
    with pytest.raises(ConfigError, match="models.auto.scheduler"):
        resolve_model("auto", {"kind": "autolfads", "scheduler": {"kind": "plateau"}})


def test_population_searches_end_to_end_and_clones_take_the_new_learning_rate(tmp_path, two_cpus):
    params = tiny_params()
    outputs, attrs = train_and_predict(params, DATA, ATTRS, run_dir=tmp_path, seed=0, device="cpu")
    validate_model_output(outputs, DATA, "<autolfads output>")
    assert attrs["kind"] == "autolfads" and attrs["checkpoint"] == "last (epoch 6 of 6)"
    assert (tmp_path / FINAL_NAME).exists() and not (tmp_path / STATE_DIR).exists() and not (tmp_path / EXPERIMENT).exists()

    population = read_population(tmp_path)
    assert sorted(population) == [(g, w) for g in (1, 2, 3) for w in (0, 1)]
    assert all(population[(1, w)]["copied_from"] == "" for w in (0, 1))  # no exploit before the first one's epoch
    for generation in (2, 3):  # one tournament after each of generations 1 and 2: the loser copied the winner
        copiers = [w for w in (0, 1) if population[(generation, w)]["copied_from"] != ""]
        assert len(copiers) == 1
        loser, winner = copiers[0], int(population[(generation, copiers[0])]["copied_from"])
        assert float(population[(generation - 1, winner)]["score"]) < float(population[(generation - 1, loser)]["score"])
        old, new = (float(population[(g, w)]["learning_rate"]) for g, w in ((generation - 1, winner), (generation, loser)))
        assert 0.002 * 0.3 <= abs(new / old - 1) <= 0.3  # the winner's value, perturbed

    # history.csv is the best worker's lineage: every epoch's optimiser learning rate is the one the
    # population record gives its ancestor in that generation, so after each clone the new one took effect
    best_score = min(float(population[(3, w)]["score"]) for w in (0, 1))
    worker = next(w for w in (0, 1) if float(population[(3, w)]["score"]) == best_score)
    lineage = {}
    for generation in (3, 2, 1):
        row = population[(generation, worker)]
        lineage[generation] = float(row["learning_rate"])
        worker = int(row["copied_from"]) if row["copied_from"] != "" else worker
    history = list(csv.DictReader(open(tmp_path / HISTORY_NAME)))
    assert [int(row["epoch"]) for row in history] == list(range(1, 7))
    for row in history:
        assert float(row["lr"]) == pytest.approx(lineage[(int(row["epoch"]) + 1) // 2])
    assert len(set(lineage.values())) > 1  # the lineage went through a clone that changed the rate

    figure = plot_population_search(pd.read_csv(tmp_path / POPULATION_HISTORY), "population")
    assert [ax.get_title() for ax in figure.axes] == ["score", *params["pbt"]["search"]]


def test_the_workers_of_a_generation_train_side_by_side(tmp_path, two_cpus):
    """Two workers on two CPUs: in every generation each one's training (population.csv's `started`,
    `finished`) overlaps the other's, after each tournament too."""
    params = tiny_params(epochs=30, generation_epochs=10)
    train_and_predict(params, DATA, ATTRS, run_dir=tmp_path, seed=0, device="cpu")
    population = read_population(tmp_path)
    assert sorted(population) == [(g, w) for g in (1, 2, 3) for w in (0, 1)]
    for generation in (1, 2, 3):
        rows = [population[(generation, w)] for w in (0, 1)]
        assert all(float(row["started"]) < float(row["finished"]) for row in rows)
        assert max(float(row["started"]) for row in rows) < min(float(row["finished"]) for row in rows), (generation, rows)


def test_more_workers_than_ray_runs_at_once_take_turns_in_every_generation(tmp_path, two_cpus):
    """Four workers on two CPUs: two processes (slots) train two workers each in turn, none waiting for
    resources that a worker waiting for its tournament holds; every generation has all four."""
    train_and_predict(tiny_params(epochs=4, workers=4), DATA, ATTRS, run_dir=tmp_path, seed=0, device="cpu")
    population = read_population(tmp_path)
    assert sorted(population) == [(g, w) for g in (1, 2) for w in range(4)]
    assert sum(population[(2, w)]["copied_from"] != "" for w in range(4)) == 2  # two pairs, two losers


KILLED_DRIVER = """
import json, os, sys
sys.path.insert(0, {tests!r})
import torch
from test_autolfads import ATTRS, DATA, tiny_params
from latentdyn.models.autolfads import tune
from latentdyn.models.pipeline import train

torch.set_num_threads(2)
params = tiny_params(epochs=40, stop_patience=1, stop_tolerance=1e9)
kill = {kill}
if kill:
    counted = tune.GenerationStopper.__call__

    def counted_then_killed(self, trial_id, result):
        decision = counted(self, trial_id, result)
        if len(self._state[0].bests) == 1:
            os._exit(9)  # the driver dies once the first generation is counted
        return decision

    tune.GenerationStopper.__call__ = counted_then_killed
train(params, DATA, ATTRS, run_dir={run_dir!r}, seed=0, device="cpu")
"""


def drive(run_dir, kill, temporary):
    """The driver in a process group of its own, with `temporary` as its (and Ray's) TMPDIR; what a
    killed one leaves (Ray's agents) is ended with it."""
    script = KILLED_DRIVER.format(tests=str(Path(__file__).parent), kill=kill, run_dir=str(run_dir))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TMPDIR": str(temporary)}
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True, env=env)
    try:
        output, _ = process.communicate(timeout=300)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return process.returncode, output


@pytest.fixture
def temporary():
    """A TMPDIR of its own: short, as Ray's socket paths under it must be (107 characters at most)."""
    path = Path(tempfile.mkdtemp(prefix="ld-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_killed_driver_resumes_and_the_stopper_keeps_counting(tmp_path, temporary):
    returncode, output = drive(tmp_path, kill=True, temporary=temporary)
    assert returncode == 9, output[-3000:]
    stopper = json.loads((tmp_path / EXPERIMENT / STOPPER_FILE).read_text())
    assert len(stopper["stopper"]["bests"]) == 1 and not stopper["stop"]
    # the search's files are all in the experiment: the temporary directory holds Ray's session and torch's cache alone
    assert {path.name for path in temporary.iterdir()} <= {"ray", "torchinductor_root"}

    returncode, output = drive(tmp_path, kill=False, temporary=temporary)
    assert returncode == 0, output[-3000:]
    assert "resuming the population" in output
    population = read_population(tmp_path)
    # patience 1 and any improvement too small: the stop comes with the second counted generation. A
    # stopper that forgot the first would have needed a third.
    assert max(generation for generation, _ in population) == 2
    assert len(list(csv.DictReader(open(tmp_path / HISTORY_NAME)))) == 2 * 2  # the model is of that generation too
    assert (tmp_path / FINAL_NAME).exists() and not (tmp_path / EXPERIMENT).exists()


def test_a_fresh_search_ignores_what_an_earlier_one_left(tmp_path, two_cpus):
    """An experiment of the same run that Tune cannot resume (killed before it saved its state) is not
    read: its tournament decisions and stopper would otherwise end the new search after one generation."""
    params = tiny_params()
    experiment = tmp_path / EXPERIMENT
    (experiment / DECISIONS).mkdir(parents=True)
    (experiment / IDENTITY_FILE).write_text("run")
    for generation in (1, 2, 3):
        (experiment / DECISIONS / f"{generation}.json").write_text(json.dumps({"stop": True, "losers": {}}))
    (experiment / STOPPER_FILE).write_text(json.dumps({"stopper": {"bests": [0.0]}, "pending": {}, "stop": True}))

    prepared = prepare(DATA, ATTRS, valid_fraction=params["valid_fraction"], seed=0)
    run_population(build(params, prepared.shapes), prepared, params, run_dir=tmp_path, seed=0, device=torch.device("cpu"),
                   identity="run")
    population = read_population(tmp_path)
    assert sorted(population) == [(g, w) for g in (1, 2, 3) for w in (0, 1)]
    assert sum(population[(2, w)]["copied_from"] != "" for w in (0, 1)) == 1  # generation 1's tournament was held anew


def test_presets_search_on_the_architecture_of_the_lfads_preset_of_each_dataset():
    presets = REPO / "config" / "presets"
    lfads = yaml.safe_load((presets / "lfads.yaml").read_text())["models"]
    autolfads = yaml.safe_load((presets / "autolfads.yaml").read_text())["models"]
    searched = set(resolve_model("a", {"kind": "autolfads"})["pbt"]["search"]) | {"scheduler"}  # set by the search
    for name, params in autolfads.items():
        twin = lfads[name.replace("autolfads_", "lfads_", 1)]
        architecture = {k: v for k, v in twin.items() if k not in searched and k != "kind"}
        assert resolve_model(name, params) == resolve_model(name, {"kind": "autolfads", **architecture}), name


WORKER_SOURCE = """
import sys
sys.path.insert(0, {source!r})  # as scripts/_bootstrap.py puts its checkout first
import latentdyn, ray, torch
from latentdyn.models.autolfads.tune import _start_ray

@ray.remote
def source():
    import latentdyn
    return latentdyn.__file__

_start_ray(torch.device("cpu"))
print("driver", latentdyn.__file__)
print("worker", ray.get(source.remote()))
"""


def test_ray_workers_import_the_drivers_latentdyn(tmp_path):
    """Workers run the checkout the driver runs, not the package installed in the environment (whose
    editable install may be another checkout): here a copy of the source that nothing else points at."""
    copy = tmp_path / "checkout" / "src"
    shutil.copytree(Path(latentdyn.__file__).parents[1], copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    process = subprocess.run([sys.executable, "-c", WORKER_SOURCE.format(source=str(copy))], capture_output=True,
                             text=True, env=env, timeout=120, cwd=tmp_path)
    lines = dict(line.split(" ", 1) for line in process.stdout.splitlines() if line.startswith(("driver ", "worker ")))
    assert lines.get("driver", "").startswith(str(copy)), process.stdout + process.stderr[-3000:]
    assert lines.get("worker") == lines["driver"], process.stdout + process.stderr[-3000:]
