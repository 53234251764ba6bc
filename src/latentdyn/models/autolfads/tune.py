"""AutoLFADS's population on Ray Tune: each worker is one LFADS model trained by the project's trainer,
one generation (`generation_epochs` epochs) per report; selection and exploration are pbt.py's.

How it maps onto Ray (2.60; README §9):

- Workers are trials of a function trainable (`train_member`). A generation is one `fit(...,
  finish=False)` of the shared trainer; its `training/last.pt` (weights, optimiser, epoch, RNG and the
  smoothed monitor) is the checkpoint reported to Tune with the generation's score, so a clone continues
  from the winner's weights, epoch and optimiser state. The perturbed hyperparameters arrive in the
  trial's config and are applied after the restore (`fit(restore_from=..., hyperparameters=...)`: the
  trainer sets the new learning rate in the restored optimiser, the model its dropout, CD rate and
  KL/L2 scales), the step lfads-torch misses.
- The schedule is Ray's synchronous PopulationBasedTraining (`BinaryTournament` subclasses it). Ray's PBT
  clones a random member of the top quantile; AutoLFADS's binary tournament needs each loser to copy
  its own pair's winner, which Ray exposes only through private methods (`_quantiles`,
  `_checkpoint_or_exploit`, `_get_new_config`). Overriding those three keeps Ray's own, version-tied
  bookkeeping (pausing every worker at a generation's end, saving winners before losers load them,
  handing a loser its winner's checkpoint) instead of a second copy of it; the pinned Ray version
  (pyproject.toml) is the one these overrides are tested against.
- The score is the trainer's smoothed monitor at the generation's end: the 0.3-smoothed validation
  reconstruction NLL by default (lfads-torch), or `monitor: valid_sv_nll` for the sample-validation NLL.
- Stopping: `GenerationStopper` feeds pbt.ImprovementStopper one generation at a time and keeps its state
  in a file in the experiment, so a restored search (`Tuner.restore`, when the driver was killed) goes on
  counting; at most the generation in flight is lost.
- Resources: Ray starts inside the job with the job's CPUs (torch's thread count, which run_model.py sets
  from the rule's threads) and its GPUs; a worker takes `cpus_per_worker` CPUs and, on a GPU,
  `gpus_per_worker` of one (0.5 as published). With RAY_ADDRESS set (scripts/ray_slurm.sh on a cluster)
  it joins that cluster instead.
- Restarts (benchmarks/README.md, pbt_overhead.py; population.csv's `started`/`finished` show them):
  Tune's controller (tune/execution/tune_controller.py, `_maybe_add_actors`) restarts a paused trial only
  when the scheduler's `choose_trial_to_run` returns it, one per step. Ray's PBT returned the least
  trained pending or paused trial, so a worker already staged came back every step until its actor had
  started and the next paused one was staged only then: one actor start after another per generation.
  `BinaryTournament.choose_trial_to_run` returns a paused worker first, so all are staged at once.
  Known remaining defect (Ray 2.60, not fixed here): `reuse_actors` keeps only the actors the controller
  expects to need. `_maybe_cache_trial_actor` ends the actor of a paused trial when the search algorithm
  has finished and no trial is staged, which holds for every worker that reports before the last of a
  synchronous generation (all the others still train). Only the last worker's actor survives; the others
  wait for new processes (~2.5 s here: Python, Ray, torch and latentdyn's imports), and a worker whose
  generation ends before they start hands its actor on, so short generations still run one after another.
  At paper scale (minutes per generation) this is a few seconds per generation; the tiny test population
  runs serially (test_autolfads.py, the xfail test).
"""

import csv
import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch

import latentdyn
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining

from latentdyn.io import atomic_path
from latentdyn.models.autolfads.pbt import ImprovementStopper, SearchRange, initial_values, perturb, tournament
from latentdyn.training.checkpoints import STATE_DIR, finish_run, load_checkpoint
from latentdyn.training.reporting import HISTORY_NAME, write_history

EXPERIMENT = "population"  # run_dir/population: the Tune experiment while the search runs
POPULATION_HISTORY = "population.csv"  # run_dir/population.csv: every worker's every generation
TIME_ATTR, SCORE = "epoch", "score"
MEMBER_FILE = "member.json"  # in each checkpoint: the worker that wrote it, its epoch and score
STOPPER_FILE = "stopper.json"
RECORDS_FILE = "records.jsonl"
IDENTITY_FILE = "identity.txt"
KEEP_GENERATIONS = 2  # checkpoints kept per worker: a winner's survives until its loser has copied it


def search_ranges(params):
    return {name: SearchRange.from_params(spec, f"pbt.search.{name}") for name, spec in params["pbt"]["search"].items()}


def first_exploit_epoch(params):
    """The first epoch at which workers may be replaced: the later of the KL and L2 ramps' ends plus one
    generation (80 + 25 with the published settings), unless `pbt.first_exploit_epoch` sets it."""
    pbt = params["pbt"]
    if pbt.get("first_exploit_epoch") is not None:
        return pbt["first_exploit_epoch"]
    ramps = max(params["kl_start_epoch"] + params["kl_increase_epochs"], params["l2_start_epoch"] + params["l2_increase_epochs"])
    return ramps + pbt["generation_epochs"]


def train_member(config, *, prepared, params, seed, identity, device):
    """One worker: from its checkpoint (its own, or after a clone its winner's), train generation after
    generation until Ray pauses or stops it, reporting each generation's score and checkpoint."""
    from latentdyn.models.lfads.model import build
    from latentdyn.training.trainer import TrainerSettings, fit

    torch.set_num_threads(params["pbt"]["cpus_per_worker"])
    worker, hyperparameters = config["worker"], {**params, **config["hyperparameters"]}
    generation_epochs, monitor = params["pbt"]["generation_epochs"], params["monitor"]
    work = Path(tempfile.mkdtemp(prefix=f"autolfads-worker{worker}-"))
    restore_from, epoch, copied_from = None, 0, -1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            shutil.copyfile(Path(directory) / "last.pt", work / "start.pt")
            member = json.loads((Path(directory) / MEMBER_FILE).read_text())
        restore_from, epoch = work / "start.pt", member["epoch"]
        copied_from = member["worker"] if member["worker"] != worker else -1
    torch.manual_seed(seed + worker)
    model = build(hyperparameters, prepared.shapes)
    try:
        while True:
            settings = TrainerSettings.from_params({**hyperparameters, "epochs": epoch + generation_epochs})
            started = time.time()
            result = fit(model, prepared, settings, run_dir=work, seed=seed + worker, device=device, identity=identity,
                         restore_from=restore_from, hyperparameters=hyperparameters, finish=False)
            finished = time.time()
            epoch, restore_from = result.epochs_run, work / STATE_DIR / "last.pt"
            score = float(result.history[-1][f"{monitor}_smoothed"])
            with tempfile.TemporaryDirectory(dir=work) as directory:
                shutil.copyfile(restore_from, Path(directory) / "last.pt")
                (Path(directory) / MEMBER_FILE).write_text(json.dumps({"worker": worker, "epoch": epoch, SCORE: score}))
                metrics = {TIME_ATTR: epoch, "generation": epoch // generation_epochs, "worker": worker, SCORE: score,
                           "copied_from": copied_from, "started": started, "finished": finished,
                           **{f"hp/{k}": v for k, v in config["hyperparameters"].items()}}
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
            copied_from = -1
    finally:
        shutil.rmtree(work, ignore_errors=True)


class BinaryTournament(PopulationBasedTraining):
    """Ray's synchronous PBT with AutoLFADS's selection (pbt.tournament: each loser copies its own pair's
    winner; NaN loses) and exploration (pbt.perturb) in place of Ray's quantile cloning and fixed factors."""

    def __init__(self, ranges, generation_epochs, first_exploit, seed):
        logging.getLogger("ray.tune.schedulers.pbt").setLevel(logging.WARNING)  # its explore lines name Ray's mutations, not these
        self._ranges = ranges
        self._rng = np.random.default_rng(seed)
        self._rivals = {}  # loser trial -> winner trial of the tournament in progress
        super().__init__(
            time_attr=TIME_ATTR,
            metric=SCORE,
            mode="min",
            perturbation_interval=generation_epochs,
            burn_in_period=first_exploit,
            custom_explore_fn=self._perturbed,
            log_config=False,
            synch=True,
        )

    def _perturbed(self, config):
        return {**config, "hyperparameters": perturb(config["hyperparameters"], self._ranges, self._rng)}

    def _quantiles(self):
        """(losers, winners) of a fresh tournament among the live workers (Ray's (lower, upper) quantiles)."""
        members = sorted(
            (trial for trial, state in self._trial_state.items() if state.last_result is not None and not trial.is_finished()),
            key=lambda trial: trial.config["worker"],
        )
        pairs = tournament([self._trial_state[trial].last_result[SCORE] for trial in members], self._rng)
        self._rivals = {members[loser]: members[winner] for winner, loser in pairs}
        return list(self._rivals), list(self._rivals.values())

    def _checkpoint_or_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
        if trial in self._rivals:  # Ray would clone any winner: a loser copies its own
            upper_quantile = [self._rivals[trial]]
        super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)

    def choose_trial_to_run(self, tune_controller):
        """A paused worker of the next generation before one already pending. The controller restarts a
        paused trial only when this returns it (one per step) and stages pending ones itself; Ray's
        choice (the least trained pending or paused trial) returns a staged trial again every step until
        its actor has started, so each paused worker of a synchronous generation waited for the previous
        one's actor start. Reads PBT's `_trial_state` and `_next_perturbation_sync` as Ray's choice does."""
        waiting = [trial for trial in tune_controller.get_trials() if trial.status == Trial.PAUSED
                   and self._trial_state[trial].last_train_time < self._next_perturbation_sync]
        if waiting:
            return min(waiting, key=lambda trial: self._trial_state[trial].last_train_time)
        return super().choose_trial_to_run(tune_controller)

    def _get_new_config(self, trial, trial_to_clone):
        config, operations = super()._get_new_config(trial, trial_to_clone)
        worker, winner = trial.config["worker"], trial_to_clone.config["worker"]
        values = ", ".join(f"{name} {value:.3g}" for name, value in config["hyperparameters"].items())
        print(f"worker {worker} copies worker {winner}, then explores: {values}", flush=True)
        return {**config, "worker": worker}, operations  # the loser stays the same worker


class GenerationStopper(tune.Stopper):
    """pbt.ImprovementStopper fed one whole generation at a time; its state (and that of a generation
    partly reported) lives in `path`, read afresh after a restore, so a resumed search keeps counting."""

    def __init__(self, path, workers, patience, tolerance, max_generations):
        self._path, self._workers = Path(path), workers
        self._rule = (patience, tolerance, max_generations)
        self._state = None  # loaded on first use: a restored Tuner unpickles this object from its start

    def _load(self):
        stopper = ImprovementStopper(*self._rule)
        pending, stop = {}, False
        if self._path.exists():
            saved = json.loads(self._path.read_text())
            stopper.load_state_dict(saved["stopper"])
            pending, stop = saved["pending"], saved["stop"]
        self._state = (stopper, pending, stop)

    def __call__(self, trial_id, result):
        if self._state is None:
            self._load()
        stopper, pending, stop = self._state
        generation = result["generation"]
        if generation > len(stopper.bests):  # a restored worker may report a counted generation again
            scores = pending.setdefault(str(generation), {})
            scores[str(result["worker"])] = result[SCORE]
            if len(scores) == self._workers:
                stop = stopper.add_generation(list(pending.pop(str(generation)).values()))
            self._state = (stopper, pending, stop)
            with atomic_path(self._path) as tmp:
                tmp.write_text(json.dumps({"stopper": stopper.state_dict(), "pending": pending, "stop": stop}))
        return False

    def stop_all(self):
        return self._state is not None and self._state[2]

    def __getstate__(self):
        return {**self.__dict__, "_state": None}


def run_population(model, prepared, params, *, run_dir, seed, device, identity):
    """Search LFADS hyperparameters by PBT; `model` ends holding the best worker's last weights and
    `run_dir` holds model.pt (as the trainer writes it), history.csv (the best worker's lineage) and
    population.csv. A killed search is resumed from `run_dir/population` by the same run."""
    run_dir = Path(run_dir).resolve()
    experiment = run_dir / EXPERIMENT
    _discard_other_run(experiment, identity)
    pbt = params["pbt"]
    started_ray = _start_ray(device)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(train_member, prepared=prepared, params=params, seed=seed, identity=identity,
                                 device="cuda" if device.type == "cuda" else "cpu"),
            {"cpu": pbt["cpus_per_worker"], "gpu": pbt["gpus_per_worker"] if device.type == "cuda" else 0},
        )
        if tune.Tuner.can_restore(experiment):
            print(f"resuming the population in {experiment}", flush=True)
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(trainable, param_space=_population(params, seed), tune_config=_tune_config(params, seed),
                               run_config=_run_config(params, run_dir))
            (experiment / IDENTITY_FILE).parent.mkdir(parents=True, exist_ok=True)
            (experiment / IDENTITY_FILE).write_text(identity)
        results = tuner.fit()
    finally:
        if started_ray:
            ray.shutdown()
    if results.errors:
        raise RuntimeError(f"AutoLFADS: {len(results.errors)} worker(s) failed; first: {results.errors[0]}")
    records = [json.loads(line) for line in (experiment / RECORDS_FILE).read_text().splitlines()]
    _write_population_history(run_dir / POPULATION_HISTORY, records, list(search_ranges(params)))
    best = _best_of_last_generation(experiment)
    (run_dir / STATE_DIR).mkdir(exist_ok=True)
    shutil.copyfile(best["path"] / "last.pt", run_dir / STATE_DIR / "last.pt")
    lineage = load_checkpoint(run_dir / STATE_DIR / "last.pt", identity, device, required=True)["loop"]["history"]
    write_history(run_dir / HISTORY_NAME, lineage)
    finish_run(model, run_dir, "last", identity, device, best[TIME_ATTR])
    shutil.rmtree(experiment)
    print(f"best: worker {best['worker']} at epoch {best[TIME_ATTR]}, {params['monitor']} {best[SCORE]:.6g}", flush=True)


def _reported_checkpoints(experiment):
    """What each checkpoint in the experiment holds (its member.json) and its `path`. Read from the
    files, not from Ray's records of them, which after a clone can pair a checkpoint with another one's
    metrics (Ray 2.60)."""
    return [{**json.loads(member.read_text()), "path": member.parent} for member in experiment.glob(f"*/checkpoint_*/{MEMBER_FILE}")]


def _best_of_last_generation(experiment):
    """The checkpoint (member.json and path) with the best score at the last generation's end."""
    reported = _reported_checkpoints(experiment)
    last = max(member[TIME_ATTR] for member in reported)
    return min((member for member in reported if member[TIME_ATTR] == last),
               key=lambda member: member[SCORE] if math.isfinite(member[SCORE]) else math.inf)


class PopulationRecord(tune.Callback):
    """Appends every worker's every generation to `records.jsonl` in the experiment (what population.csv
    is written from, so it survives a restore) and deletes checkpoints more than KEEP_GENERATIONS
    generations old. Ray's own records are not used for either: after a clone they can pair a
    checkpoint directory with another one's metrics and drop a trial's rows (Ray 2.60), so `num_to_keep`
    could delete a checkpoint still needed."""

    def __init__(self, experiment, generation_epochs):
        self._experiment, self._keep_epochs = Path(experiment), KEEP_GENERATIONS * generation_epochs

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = {key: result[key] for key in ("generation", "worker", TIME_ATTR, SCORE, "copied_from", "started", "finished")}
        row.update({key: value for key, value in result.items() if key.startswith("hp/")})
        with open(self._experiment / RECORDS_FILE, "a") as f:
            f.write(json.dumps(row) + "\n")
        for member in _reported_checkpoints(self._experiment):
            if member[TIME_ATTR] <= result[TIME_ATTR] - self._keep_epochs:
                shutil.rmtree(member["path"], ignore_errors=True)


def _population(params, seed):
    """Tune's param space: worker i with its initial hyperparameters (pbt.initial_values, seeded)."""
    rng = np.random.default_rng(seed)
    ranges = search_ranges(params)
    initial = [initial_values(ranges, rng) for _ in range(params["pbt"]["workers"])]
    return {"worker": tune.grid_search(list(range(len(initial)))),
            "hyperparameters": tune.sample_from(lambda spec: initial[spec.config["worker"]])}


def _tune_config(params, seed):
    pbt = params["pbt"]
    scheduler = BinaryTournament(search_ranges(params), pbt["generation_epochs"], first_exploit_epoch(params), seed)
    return tune.TuneConfig(scheduler=scheduler, reuse_actors=True)


def _run_config(params, run_dir):
    pbt = params["pbt"]
    max_generations = math.ceil(params["epochs"] / pbt["generation_epochs"])
    stopper = GenerationStopper(run_dir / EXPERIMENT / STOPPER_FILE, pbt["workers"], pbt["stop_patience"],
                                pbt["stop_tolerance"], max_generations)
    return tune.RunConfig(
        name=EXPERIMENT,
        storage_path=str(run_dir),
        stop=stopper,
        callbacks=[PopulationRecord(run_dir / EXPERIMENT, pbt["generation_epochs"])],
        verbose=0,
    )


def worker_runtime_env():
    """Ray's runtime env for the workers: the driver's latentdyn source first on their PYTHONPATH. Ray
    starts workers with its own sys.path, which finds the package installed in the environment, and an
    editable install may point at another checkout than the one whose script runs the driver
    (scripts/_bootstrap.py puts the checkout first for the driver alone); workers must train the same
    code the driver plans with."""
    source = str(Path(latentdyn.__file__).resolve().parents[1])
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}}


def _start_ray(device):
    """Start Ray inside the job (its CPUs, its GPUs), or join the cluster at RAY_ADDRESS; whether it was
    started (and is to be shut down) here."""
    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True, runtime_env=worker_runtime_env())
    else:
        gpus = torch.cuda.device_count() if device.type == "cuda" else 0
        ray.init(address="local", num_cpus=torch.get_num_threads(), num_gpus=gpus, include_dashboard=False,
                 runtime_env=worker_runtime_env())
    return True


def _discard_other_run(experiment, identity):
    """A population left by another model, data or seed is not resumed: it is removed, with one line."""
    stored = experiment / IDENTITY_FILE
    if experiment.exists() and (not stored.exists() or stored.read_text() != identity):
        print(f"{experiment}: the population of another run; starting afresh", flush=True)
        shutil.rmtree(experiment)


def _write_population_history(path, rows, searched):
    """population.csv: per generation and worker, the hyperparameters it trained with, its score, the
    worker whose checkpoint it started the generation from (empty when its own) and when its training
    started and finished (unix seconds: whether the workers of a generation ran side by side)."""
    columns = ["generation", "worker", "epoch", SCORE, "copied_from", "started", "finished", *searched]
    latest = {(row["generation"], row["worker"]): row for row in rows}  # a restored worker's repeat replaces its first
    rows = [latest[key] for key in sorted(latest)]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            copied = "" if row["copied_from"] < 0 else int(row["copied_from"])
            writer.writerow([int(row["generation"]), int(row["worker"]), int(row[TIME_ATTR]), row[SCORE], copied,
                             *(round(row[key], 3) if key in row else "" for key in ("started", "finished")),  # older records: none
                             *(row[f"hp/{name}"] for name in searched)])
