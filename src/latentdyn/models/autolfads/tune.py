"""AutoLFADS's population on Ray Tune: each worker is one LFADS model trained by the project's trainer,
one generation (`generation_epochs` epochs) per report; selection and exploration are pbt.py's.

How it maps onto Ray (2.60; README §9):

- Each worker is one LFADS model: a generation is one `fit(..., finish=False)` of the shared trainer
  whose run directory is the generation's checkpoint in the experiment, `checkpoints/worker<w>-epoch<e>`:
  the trainer writes its `training/last.pt` (weights, optimiser, epoch, RNG and the smoothed monitor)
  there once, at the generation's end, and member.json (the report: score, hyperparameters) beside it
  marks it complete. Tune gets the report alone, no checkpoint of its own (which it would copy again).
  The worker then waits for its generation's tournament and trains the next generation either from its
  own checkpoint or, after losing, from its winner's, with the perturbed hyperparameters applied after
  the restore (`fit(restore_from=..., hyperparameters=...)`: the trainer sets the new learning rate in
  the restored optimiser, the model its dropout, CD rate and KL/L2 scales), the step lfads-torch misses.
- Trials are slots, not workers: one trial of the function trainable `train_slot` per worker Ray can run
  at once, each a process that lives for the whole search and trains its share of the population in
  turn (a slot per worker when all fit, as with 20 workers at 0.5 GPU on 10 GPUs).
- Why not Ray's PopulationBasedTraining (synch=True): it pauses every worker at a generation's end and
  restores it, and Tune 2.60 keeps a paused trial's actor only if a staged trial will need it
  (`TuneController._maybe_cache_trial_actor`), which in a synchronous generation holds for the last
  worker to report alone: every other worker waited for a new process (~2.5 s of Python, Ray, torch
  and latentdyn imports) each generation, and short generations ran one worker after another. Here no
  trial pauses, so no process ends until the search does, and only public Tune APIs are used. A slot
  trains several workers rather than pausing one so that a worker waiting for a tournament never holds
  resources another needs to finish the generation.
- Synchronous generations: `BinaryTournament` (a Tune callback in the driver) holds a generation's
  tournament once every worker has reported it and writes the decision (who copies whose
  checkpoint, with which perturbed hyperparameters) to `decisions/<generation>.json` in the experiment,
  which the workers wait for. Its random draws are seeded by (seed, generation), so a restored driver
  holds the same tournaments. A search that starts afresh first removes whatever an earlier one that
  cannot be resumed left in the experiment (its decisions, stopper state, checkpoints).
- The score is the trainer's smoothed monitor at the generation's end: the 0.3-smoothed validation
  reconstruction NLL by default (lfads-torch), or `monitor: valid_sv_nll` for the sample-validation NLL.
- Stopping: `GenerationStopper` feeds pbt.ImprovementStopper one generation at a time and keeps its state
  in a file in the experiment, so a restored search (`Tuner.restore`, when the driver was killed) goes on
  counting; at most the generation in flight is lost. A restored worker continues from its last
  reported checkpoint, whose member.json holds its hyperparameters of then; if that generation's
  tournament was not decided, it reports the generation again so that it is.
- Resources: Ray starts inside the job with the job's CPUs (torch's thread count, which run_model.py sets
  from the rule's threads) and its GPUs; a slot takes `cpus_per_worker` CPUs and, on a GPU,
  `gpus_per_worker` of one (0.5 as published). With RAY_ADDRESS set (scripts/ray_slurm.sh on a cluster)
  it joins that cluster instead; the experiment (checkpoints and decisions) is then on the shared
  filesystem the run directory needs anyway.
"""

import csv
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import ray
import torch

import latentdyn
from ray import tune

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
DECISIONS = "decisions"  # in the experiment: <generation>.json, each generation's tournament
CHECKPOINTS = "checkpoints"  # in the experiment: worker<w>-epoch<e>/, each worker's state at a generation's end
DECISION_POLL_S = (0.001, 0.02)  # the first and the longest interval between looks for a decision
NODES_READY_S = 120  # as long as ray_slurm.sh waits for its head (RAY_SLURM_READY_S)
KEEP_GENERATIONS = 2  # checkpoints kept per worker: a winner's survives until its loser has restored from it


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


def train_slot(config, *, prepared, params, seed, identity, device, experiment):
    """One Ray process for the whole search, training its share of the population (workers `slot`,
    `slot + slots`, ...; one share per worker when Ray can run them all at once): every generation each
    of its workers follows the last tournament's decision, trains and reports its score and checkpoint.
    A restored search continues each worker from its last checkpoint in the experiment."""
    torch.set_num_threads(params["pbt"]["cpus_per_worker"])
    experiment = Path(experiment)
    latest = _latest_checkpoints(experiment)
    workers = [_Worker(worker, values, latest.get(worker))
               for worker, values in enumerate(_initial_population(params, seed)) if worker % config["slots"] == config["slot"]]
    for worker in workers:  # restored at a generation whose tournament was not held: report it again so it is
        if worker.reported is not None and not _decision_path(experiment, worker.reported["generation"]).exists():
            tune.report(worker.reported)
    while True:
        worker = min(workers, key=lambda w: w.epoch)  # the slot's generations stay in step
        if worker.reported is not None:
            decision = _await_decision(experiment, worker.reported["generation"])
            if decision["stop"]:
                return
            worker.follow(decision["losers"])
        worker.train_generation(prepared, params, seed=seed, identity=identity, device=device, experiment=experiment)


class _Worker:
    """One member of the population in a slot's process: its hyperparameters, the checkpoint its next
    generation starts from (its own, or after a lost tournament its winner's: read in place, as it is
    kept until the next generation has been reported, see PopulationRecord) and its model."""

    def __init__(self, worker, hyperparameters, reported=None):
        self.worker, self.hyperparameters = worker, hyperparameters
        self.reported, self.epoch, self.start, self.copied_from, self.model = None, 0, None, -1, None
        if reported is not None:
            self.start = _state(reported["path"])
            self.reported = {key: value for key, value in reported.items() if key != "path"}
            self.epoch, self.hyperparameters = reported[TIME_ATTR], _hyperparameters(reported)

    def follow(self, losers):
        """Start from the winner's checkpoint with the perturbed hyperparameters if this worker lost."""
        lost = losers.get(str(self.worker))
        if lost is not None:
            self.start = _state(lost["checkpoint"])
            self.hyperparameters, self.copied_from = lost["hyperparameters"], lost["winner"]

    def train_generation(self, prepared, params, *, seed, identity, device, experiment):
        from latentdyn.models.lfads.model import build
        from latentdyn.training.trainer import TrainerSettings, fit

        hyperparameters, generation_epochs = {**params, **self.hyperparameters}, params["pbt"]["generation_epochs"]
        if self.model is None:
            torch.manual_seed(seed + self.worker)
            self.model = build(hyperparameters, prepared.shapes)
        settings = TrainerSettings.from_params({**hyperparameters, "epochs": self.epoch + generation_epochs})
        checkpoint = experiment / CHECKPOINTS / f"worker{self.worker}-epoch{settings.epochs}"
        started = time.time()
        result = fit(self.model, prepared, settings, run_dir=checkpoint, seed=seed + self.worker, device=device,
                     identity=identity, restore_from=self.start, hyperparameters=hyperparameters, finish=False)
        finished = time.time()
        self.epoch, self.start = result.epochs_run, _state(checkpoint)
        self.reported = {TIME_ATTR: self.epoch, "generation": self.epoch // generation_epochs, "worker": self.worker,
                         SCORE: float(result.history[-1][f"{params['monitor']}_smoothed"]), "copied_from": self.copied_from,
                         "started": started, "finished": finished,
                         "training_s": sum(row["seconds"] for row in result.history[-generation_epochs:]),
                         **{f"hp/{k}": v for k, v in self.hyperparameters.items()}}
        with atomic_path(checkpoint / MEMBER_FILE) as tmp:  # last: a checkpoint with member.json is complete
            tmp.write_text(json.dumps(self.reported))
        tune.report(self.reported)
        self.copied_from = -1


def _state(checkpoint):
    """The trainer's state file in a checkpoint directory (the generation's run directory)."""
    return Path(checkpoint) / STATE_DIR / "last.pt"


def _hyperparameters(reported):
    return {key[len("hp/"):]: value for key, value in reported.items() if key.startswith("hp/")}


def _decision_path(experiment, generation):
    return Path(experiment) / DECISIONS / f"{generation}.json"


def _await_decision(experiment, generation):
    """The decision after `generation` (`stop`, and `losers`: {loser: its winner, the winner's checkpoint,
    the loser's new hyperparameters}), once the driver has written it. Looked for at intervals doubling
    from DECISION_POLL_S's first to its longest: the generation's last worker, whose decision follows its
    report within milliseconds, sees it at once, and a worker waiting long for a straggler looks at most
    50 times a second (a light load for a cluster's shared filesystem)."""
    path = _decision_path(experiment, generation)
    interval, longest = DECISION_POLL_S
    while not path.exists():
        time.sleep(interval)
        interval = min(2 * interval, longest)
    return json.loads(path.read_text())


class BinaryTournament(tune.Callback):
    """AutoLFADS's selection (pbt.tournament: each loser copies its own pair's winner; NaN loses) and
    exploration (pbt.perturb), held in the driver once every worker has reported a generation, from the
    first exploit epoch on; the decision goes to `decisions/<generation>.json` in the experiment, which
    the slots wait for. Once GenerationStopper has ended the search the decision is to stop, and the
    slots return: a slot waiting for a decision would not heed Ray's stop (which then ends its process
    only after a timeout) and would train another generation. The stopper's file tells, not the stopper
    object, of which the controller holds another copy after Tuner.restore. Draws are seeded by (seed,
    generation) so that a restored driver, which has lost this object's state, holds the same tournament."""

    def __init__(self, experiment, workers, ranges, first_exploit, seed):
        self._experiment, self._workers, self._ranges = Path(experiment), workers, ranges
        self._first_exploit, self._seed = first_exploit, seed
        self._reported = {}  # generation -> {worker: result}, for generations not yet decided

    def on_trial_result(self, iteration, trials, trial, result, **info):
        generation = result["generation"]
        path = _decision_path(self._experiment, generation)
        reported = self._reported.setdefault(generation, {})
        reported[result["worker"]] = result
        if len(reported) < self._workers or path.exists():
            return
        del self._reported[generation]
        stop, losers = GenerationStopper.stopped(self._experiment / STOPPER_FILE), {}
        if not stop and result[TIME_ATTR] >= self._first_exploit:
            rng = np.random.default_rng([self._seed, generation])
            checkpoints = {(member["worker"], member[TIME_ATTR]): member["path"] for member in _reported_checkpoints(self._experiment)}
            for winner, loser in tournament([reported[worker][SCORE] for worker in range(self._workers)], rng):
                values = perturb(_hyperparameters(reported[winner]), self._ranges, rng)
                losers[str(loser)] = {"winner": winner, "checkpoint": str(checkpoints[(winner, result[TIME_ATTR])]),
                                      "hyperparameters": values}
                print(f"worker {loser} copies worker {winner}, then explores: "
                      + ", ".join(f"{name} {value:.3g}" for name, value in values.items()), flush=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"stop": stop, "losers": losers}))


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

    @staticmethod
    def stopped(path):
        """Whether the stopper whose state is in `path` has ended the search."""
        return Path(path).exists() and json.loads(Path(path).read_text())["stop"]

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
            tune.with_parameters(train_slot, prepared=prepared, params=params, seed=seed, identity=identity,
                                 device="cuda" if device.type == "cuda" else "cpu", experiment=str(experiment)),
            {"cpu": pbt["cpus_per_worker"], "gpu": pbt["gpus_per_worker"] if device.type == "cuda" else 0},
        )
        if tune.Tuner.can_restore(experiment):
            print(f"resuming the population in {experiment}", flush=True)
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True)
        else:
            # what a search killed before Tune saved its state left (decisions, stopper, checkpoints) holds for no other
            shutil.rmtree(experiment, ignore_errors=True)
            tuner = tune.Tuner(trainable, param_space=_slots(params, device), run_config=_run_config(params, run_dir, seed))
            experiment.mkdir(parents=True, exist_ok=True)
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
    shutil.copyfile(_state(best["path"]), run_dir / STATE_DIR / "last.pt")
    lineage = load_checkpoint(run_dir / STATE_DIR / "last.pt", identity, device, required=True)["loop"]["history"]
    write_history(run_dir / HISTORY_NAME, lineage)
    finish_run(model, run_dir, "last", identity, device, best[TIME_ATTR])
    shutil.rmtree(experiment)
    print(f"best: worker {best['worker']} at epoch {best[TIME_ATTR]}, {params['monitor']} {best[SCORE]:.6g}", flush=True)


def _reported_checkpoints(experiment):
    """What each checkpoint in the experiment holds (its member.json: the worker's report) and its
    `path`. Read from the files: Ray's records are per trial, and a trial trains several workers."""
    return [{**json.loads(member.read_text()), "path": member.parent} for member in (experiment / CHECKPOINTS).glob(f"*/{MEMBER_FILE}")]


def _latest_checkpoints(experiment):
    """{worker: its last reported checkpoint (as _reported_checkpoints)}: where a restored search goes on."""
    latest = {}
    for member in sorted(_reported_checkpoints(experiment), key=lambda member: member[TIME_ATTR]):
        latest[member["worker"]] = member
    return latest


def _best_of_last_generation(experiment):
    """The checkpoint (member.json and path) with the best score at the last generation's end."""
    reported = _reported_checkpoints(experiment)
    last = max(member[TIME_ATTR] for member in reported)
    return min((member for member in reported if member[TIME_ATTR] == last),
               key=lambda member: member[SCORE] if math.isfinite(member[SCORE]) else math.inf)


class PopulationRecord(tune.Callback):
    """Appends every worker's every generation to `records.jsonl` in the experiment (what population.csv
    is written from, so it survives a restore) and deletes checkpoints more than KEEP_GENERATIONS
    generations old (a winner's checkpoint is read by its losers at the next generation's start).
    The checkpoints are the workers' own files (tune.report carries none), as Ray's records are per trial
    and a trial trains several workers."""

    def __init__(self, experiment, generation_epochs):
        self._experiment, self._keep_epochs = Path(experiment), KEEP_GENERATIONS * generation_epochs

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = {key: result[key] for key in ("generation", "worker", TIME_ATTR, SCORE, "copied_from", "started", "finished", "training_s")}
        row.update({key: value for key, value in result.items() if key.startswith("hp/")})
        with open(self._experiment / RECORDS_FILE, "a") as f:
            f.write(json.dumps(row) + "\n")
        for member in _reported_checkpoints(self._experiment):
            if member[TIME_ATTR] <= result[TIME_ATTR] - self._keep_epochs:
                shutil.rmtree(member["path"], ignore_errors=True)


def _initial_population(params, seed):
    """Each worker's initial hyperparameters (pbt.initial_values, seeded)."""
    rng = np.random.default_rng(seed)
    ranges = search_ranges(params)
    return [initial_values(ranges, rng) for _ in range(params["pbt"]["workers"])]


def _slots(params, device):
    """Tune's param space: one trial per worker Ray can run at once (its CPUs, or GPUs, per worker), each
    training the workers `slot`, `slot + slots`, ... in turn, so that no trial waits for resources held
    by another one waiting for a tournament."""
    pbt, resources = params["pbt"], ray.cluster_resources()
    fits = [resources.get("CPU", 0) // pbt["cpus_per_worker"]]
    if device.type == "cuda":
        fits.append(resources.get("GPU", 0) // pbt["gpus_per_worker"])
    slots = int(max(1, min(pbt["workers"], *fits)))
    return {"slot": tune.grid_search(list(range(slots))), "slots": slots}


def _run_config(params, run_dir, seed):
    pbt, experiment = params["pbt"], run_dir / EXPERIMENT
    max_generations = math.ceil(params["epochs"] / pbt["generation_epochs"])
    stopper = GenerationStopper(experiment / STOPPER_FILE, pbt["workers"], pbt["stop_patience"],
                                pbt["stop_tolerance"], max_generations)
    tournament = BinaryTournament(experiment, pbt["workers"], search_ranges(params), first_exploit_epoch(params), seed)
    return tune.RunConfig(
        name=EXPERIMENT,
        storage_path=str(run_dir),
        stop=stopper,
        callbacks=[PopulationRecord(experiment, pbt["generation_epochs"]), tournament],
        failure_config=tune.FailureConfig(fail_fast=True),  # the others would wait for its reports forever
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
        _await_nodes(int(os.environ.get("RAY_SLURM_NODES", 1)))
    else:
        gpus = torch.cuda.device_count() if device.type == "cuda" else 0
        ray.init(address="local", num_cpus=torch.get_num_threads(), num_gpus=gpus, include_dashboard=False,
                 runtime_env=worker_runtime_env())
    return True


def _await_nodes(expected):
    """Wait up to NODES_READY_S for the cluster's `expected` nodes (ray_slurm.sh starts the driver while
    the other nodes are joining): the population's slots are sized from the resources present when the
    search starts (_slots)."""
    deadline = time.monotonic() + NODES_READY_S
    while (alive := sum(node["Alive"] for node in ray.nodes())) < expected:
        if time.monotonic() > deadline:
            print(f"{alive} of {expected} Ray nodes after {NODES_READY_S} s: the population runs on those", flush=True)
            return
        time.sleep(1)


def _discard_other_run(experiment, identity):
    """A population left by another model, data or seed is not resumed: it is removed, with one line."""
    stored = experiment / IDENTITY_FILE
    if experiment.exists() and (not stored.exists() or stored.read_text() != identity):
        print(f"{experiment}: the population of another run; starting afresh", flush=True)
        shutil.rmtree(experiment)


def _write_population_history(path, rows, searched):
    """population.csv: per generation and worker, the hyperparameters it trained with, its score, the
    worker whose checkpoint it started the generation from (empty when its own), when its training
    started and finished (unix seconds: whether the workers of a generation ran side by side) and the
    seconds its epochs took (history.csv's `seconds`: what the training alone took, without the trainer's
    restore and final checkpoint)."""
    columns = ["generation", "worker", "epoch", SCORE, "copied_from", "started", "finished", "training_s", *searched]
    latest = {(row["generation"], row["worker"]): row for row in rows}  # a restored worker's repeat replaces its first
    rows = [latest[key] for key in sorted(latest)]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            copied = "" if row["copied_from"] < 0 else int(row["copied_from"])
            writer.writerow([int(row["generation"]), int(row["worker"]), int(row[TIME_ATTR]), row[SCORE], copied,
                             *(round(row[key], 3) if key in row else "" for key in ("started", "finished", "training_s")),  # older records: none
                             *(row[f"hp/{name}"] for name in searched)])
