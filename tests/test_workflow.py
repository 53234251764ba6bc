"""The workflow as users run it: planning the paper config, config validation, a real tiny run."""

import json
import re
import shutil
import subprocess
import sys

import h5py
import pandas as pd
import pytest
import yaml
from snakemake.exceptions import WorkflowError

from latentdyn.errors import ConfigError
from workflow_api import PAPER_CONFIG, REPO, TINY_CONFIG, run_workflow

USER_DATASET = {
    "nwb": ["/data/session.nwb"],
    "align_field": "move_onset_time",
    "window_ms": [-250, 450],
    "behavior_fields": ["hand_vel"],
    "behavior_lag_ms": 100,
    "condition_fields": ["trial_type"],
    "psth_sigma_ms": 70,
    "allow_overlap": False,
}


def test_paper_config_plans_every_combination(tmp_path):
    config = yaml.safe_load(PAPER_CONFIG.read_text())
    study, nlb = config["attractor_study"], config["nlb_study"]
    attractor_runs = len(study["systems"]) * len(study["models"]) * len(study["latent_sizes"]) * len(study["seeds"])
    nlb_runs = len(nlb["datasets"]) * len(nlb["bin_sizes_ms"]) * len(nlb["models"]) * len(nlb["seeds"])
    sbtt, two_photon = config["sbtt_study"], config["two_photon_study"]
    masks = sum(len(sbtt["dataset_bandwidths"].get(d, sbtt["bandwidths"])) for d in sbtt["datasets"])
    sbtt_runs = masks * len(sbtt["models"]) * len(sbtt["seeds"])
    two_photon_runs = 2 * len(two_photon["models"]) * len(two_photon["seeds"])
    synthetic = config["synthetic_study"]
    synthetic_runs = len(synthetic["datasets"]) * len(synthetic["models"]) * len(synthetic["seeds"])
    pretraining = config["sbtt_pretraining_study"]
    pretrained = len(pretraining["full_trials"]) * len(pretraining["seeds"])  # one model per size of full data
    adapted = len(pretraining["bandwidths"]) * pretrained  # <model>-P<n>; from scratch is the sbtt study's run
    trial_count_runs = {name: len(s["datasets"]) * len(s["trial_counts"]) * len(s["models"]) * len(s["seeds"])
                        for name, s in ((n, config[n]) for n in ("small_data_study", "cd_study"))}
    subsets = sum(len(config[n]["datasets"]) * len(config[n]["trial_counts"]) for n in trial_count_runs)
    scored = attractor_runs + nlb_runs + sbtt_runs + two_photon_runs + synthetic_runs + adapted
    multisession = config["multisession_study"]
    sessions = {"reaching_ms": [f"reaching_ms_s{s:02d}" for s in range(config["multisession_reaching"]["n_sessions"])],
                **config["nlb_multisession"]}
    per_setting = len(multisession["models"]) * len(multisession["seeds"]) * len(multisession["bin_sizes_ms"])
    alone = sum(len(sessions[d]) for d in multisession["datasets"]) * per_setting  # and as many <model>-S parts
    stitched = len(multisession["datasets"]) * per_setting
    scored += sum(trial_count_runs.values())
    generative = config["generative_study"]
    scored += len(generative["models"]) * len(generative["seeds"]) * len(generative["datasets"])
    jobs = run_workflow(tmp_path)
    # the attractor runs of one generator and latent size train as one stack (every system and seed)
    assert jobs["train_stack"] == len(study["models"]) * len(study["latent_sizes"])
    assert jobs["predict"] == scored + alone + stitched
    assert jobs["train"] == scored + alone + stitched + pretrained - attractor_runs
    assert jobs["evaluate"] == scored + 2 * alone and jobs["unstitch"] == alone
    assert jobs["stitch_sessions"] == jobs["multisession_decoding"] == stitched and jobs["simulate_multisession"] == 1
    assert jobs["figure_multisession"] == jobs["figure_multisession_trials"] == 1
    assert jobs["keep_full_trials"] == len(pretraining["full_trials"]) + subsets and jobs["figure_sbtt_pretraining"] == 1
    assert jobs["figure_small_data"] == jobs["figure_cd_validation"] == jobs["nlb_submission"] == 1
    assert jobs["simulate_chaotic_rnn"] == jobs["figure_synthetic_rate_r2"] == 1
    assert jobs["mask_bandwidth"] == masks and jobs["simulate_sbtt_lorenz"] == jobs["simulate_two_photon"] == 1
    assert jobs["figure_sbtt_bandwidth"] == 2 and jobs["figure_sbtt_two_photon"] == 1
    assert jobs["simulate_attractor"] == len(study["systems"])
    assert jobs["download_nlb"] == len([d for d in nlb["datasets"] if d in config["nlb_sources"]])
    binned = {f"{d}_{b}ms" for d in nlb["datasets"] for b in nlb["bin_sizes_ms"]}
    binned |= set(generative["datasets"])  # the sources of <dataset>_unseen
    assert jobs["generative_study"] == 1 and jobs["figure_generative"] == jobs["withhold_conditions"] == 2
    binned |= {f"{s}_{b}ms" for d in multisession["datasets"] for s in sessions[d] for b in multisession["bin_sizes_ms"]}
    assert jobs["bin_nwb"] == len(binned)  # MC_Maze L/M/S sessions are the NLB study's binned files
    per_system = len(study["models"]) * len(study["trajectory_latent_sizes"])
    assert jobs["fixed_points"] == len(study["systems"]) * per_system
    assert jobs["figure_metric_vs_latent"] == 3 and jobs["collect_metrics"] == 10


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"epochz": 3}, "epochz"),
        ({"attractor_study": {"seeds": "zero"}}, "seeds"),
        ({"attractors": {"n_neurons": 0}}, "n_neurons"),
        ({"models": {"gru": {"kind": "transformer"}}}, "kind"),
        ({"models": {"node": {"dropout": 1.5}}}, "dropout"),
        ({"device": "gpu"}, "device"),
        ({"attractor_study": {"trajectory_latent_sizes": [3, 7]}}, "attractor_study.trajectory_latent_sizes"),
        ({"user_datasets": {"mine": {**USER_DATASET, "window_ms": [-250, 455]}}}, "user_datasets.mine.window_ms"),
        ({"user_datasets": {"mine": {**USER_DATASET, "window_ms": [450, -250]}}}, "user_datasets.mine.window_ms"),
    ],
)
def test_bad_config_stops_before_any_job_naming_the_key(tmp_path, override, named):
    with pytest.raises(ConfigError) as error:
        run_workflow(tmp_path, config=override)
    assert named in str(error.value) and len(str(error.value).splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_unknown_model_in_a_study_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"'attractor_study\.models': no model named 'lstm'"):
        run_workflow(tmp_path, config={"attractor_study": {"models": ["lstm"]}})


def test_latent_size_zero_in_a_target_stops_before_any_job(tmp_path):
    with pytest.raises(WorkflowError, match=r"'node-L0'.*latent_size to k >= 1"):
        run_workflow(tmp_path, targets=["results/runs/lorenz/node-L0/seed0/output.h5"])
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("override", "rules"),
    [
        ({"attractor_study": None}, {"simulate_reaching", "bin_nwb", "train", "predict", "evaluate",
                                     "collect_metrics", "render_table", "figure_nlb_metrics", "nlb_submission"}),
        ({"attractor_study": {"systems": []}, "nlb_study": {"models": []}}, set()),
        ({"attractor_study": {"models": []}, "nlb_study": None}, set()),
    ],
)
def test_a_study_switched_off_or_empty_plans_nothing_for_it(tmp_path, override, rules):
    jobs = run_workflow(tmp_path, [TINY_CONFIG], config=override)
    assert set(jobs) - {"all"} == rules


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    run_workflow(workdir, [TINY_CONFIG], executor="local", report=workdir / "report.html")
    return workdir


def test_tiny_workflow_produces_every_target(tiny_run):
    figures = tiny_run / "results" / "figures"
    for name in (
        "fig1a_example_data_lorenz",
        "fig1c_nll",
        "fig2a_rate_r2",
        "fig2c_state_r2",
        "fig3a_latent_trajectories_lorenz",
        "fig3b_fixed_point_eigenvalues_lorenz",
        "nlb_metrics",
    ):
        for suffix in (".png", ".pdf"):
            assert (figures / f"{name}{suffix}").stat().st_size > 1000
    assert (tiny_run / "report.html").stat().st_size > 10_000


def test_the_report_states_what_produced_it_and_shows_every_table(tiny_run):
    page = (tiny_run / "report.html").read_text()
    start = page.index("workflow_desc = ") + len("workflow_desc = ")
    landing = json.loads(page[start:page.index("\n", start)].rstrip(";"))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    assert len(commit) == 12 and commit in landing and "System Message" not in landing
    assert "tests/configs/tiny.yaml" in landing and "1 seed." in landing
    for table in ("attractor_study", "nlb_study"):
        rendered = (tiny_run / "results" / "tables" / f"{table}.html").read_text()
        assert "<h3>Columns</h3>" in rendered and f"{table}.html" in page


def test_tiny_workflow_tables_and_outputs(tiny_run):
    attractors = pd.read_csv(tiny_run / "results" / "tables" / "attractor_study.csv")
    assert set(attractors["model"]) == {"gru-L3", "node-L3"}
    assert attractors[["nll", "rate_r2", "state_r2"]].notna().all().all()
    nlb = pd.read_csv(tiny_run / "results" / "tables" / "nlb_study.csv")
    assert nlb.loc[0, "dataset"] == "reaching_20ms" and {"co-bps", "vel R2", "psth R2", "fp-bps"} <= set(nlb.columns)
    run = tiny_run / "results" / "runs" / "lorenz" / "node-L3" / "seed0"
    with h5py.File(run / "output.h5") as f:
        assert f["eval_rates_heldin"].shape == (8, 20, 6) and f["latents/eval_states"].shape == (8, 20, 3)
        assert f.attrs["format_version"] == 2 and f.attrs["state_latent"] == "states"
    assert json.loads((run / "metrics.json").read_text())["latent_size"] == 3
    assert len(pd.read_csv(run / "history.csv")) == 2


def test_a_stack_trains_its_runs_in_one_job_and_one_missing_run_alone(tmp_path):
    config = {"attractor_study": {"seeds": [0, 1], "models": ["gru"]}}
    runs = [tmp_path / "results" / "runs" / "lorenz" / "gru-L3" / f"seed{seed}" for seed in (0, 1)]
    targets = [str((run / "model.pt").relative_to(tmp_path)) for run in runs]
    assert run_workflow(tmp_path, [TINY_CONFIG], config, targets=targets)["train_stack"] == 1
    run_workflow(tmp_path, [TINY_CONFIG], config, targets=targets, executor="local")
    log = tmp_path / "results" / "logs" / "train_stack" / "gru-L3.log"
    assert "training 2 of 2 runs as one stack" in log.read_text()
    assert all(len(pd.read_csv(run / "history.csv")) == 2 for run in runs)
    kept = runs[1].joinpath("model.pt").read_bytes()
    runs[0].joinpath("model.pt").unlink()
    jobs = run_workflow(tmp_path, [TINY_CONFIG], config, targets=[targets[0]], executor="local")
    assert jobs == {"train_stack": 1}
    assert "training 1 of 2 runs as one stack" in log.read_text()
    # the run kept is not retrained (snakemake touches it: its predictions rerun, with the same result)
    assert runs[0].joinpath("model.pt").exists() and runs[1].joinpath("model.pt").read_bytes() == kept


def test_rerunning_a_finished_target_does_nothing(tiny_run):
    jobs = run_workflow(tiny_run, [TINY_CONFIG])
    assert sum(jobs.values()) == 0


def test_lint_and_format_are_clean():
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations" in lint.stdout + lint.stderr
    snakefmt = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"], cwd=REPO, capture_output=True, text=True
    )
    assert snakefmt.returncode == 0, snakefmt.stdout + snakefmt.stderr


def test_user_dataset_with_a_missing_field_fails_naming_it(tiny_run, tmp_path):
    nwb = tiny_run / "results" / "data" / "nwb" / "reaching" / "reaching.nwb"
    user = {**USER_DATASET, "nwb": [str(nwb)], "align_field": "reach_start_time"}
    config = {"user_datasets": {"mine": user}}
    with pytest.raises(WorkflowError):
        run_workflow(tmp_path, [TINY_CONFIG], config, targets=["results/data/binned/mine_20ms.h5"], executor="local")
    log = (tmp_path / "results" / "logs" / "bin_nwb" / "mine_20ms.log").read_text().strip().splitlines()
    assert log[-1].startswith(f"error: {nwb}: field 'reach_start_time': missing")
    assert not (tmp_path / "results" / "data" / "binned" / "mine_20ms.h5").exists()

    user["align_field"] = "move_onset_time"
    run_workflow(tmp_path, [TINY_CONFIG], config, targets=["results/data/binned/mine_20ms.h5"], executor="local")
    assert (tmp_path / "results" / "data" / "binned" / "mine_20ms.h5").exists()


def readme_config(name):
    """The YAML block of README.md that starts with `# <name>`, parsed."""
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return yaml.safe_load(next(block for block in blocks if block.startswith(f"# {name}\n")))


def test_readme_own_data_example_runs_only_the_user_dataset(tiny_run, tmp_path):
    config = readme_config("my_data.yaml")
    (dataset,) = config["user_datasets"]
    session = tmp_path / "my recordings" / "my session.nwb"  # spaces in the NWB path, too
    session.parent.mkdir()
    shutil.copy(tiny_run / "results" / "data" / "nwb" / "reaching" / "reaching.nwb", session)
    config["user_datasets"][dataset]["nwb"] = [str(session)]
    my_data = tmp_path / "my_data.yaml"
    my_data.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    jobs = run_workflow(workdir, [my_data])
    assert jobs == {"bin_nwb": 1, "train": 1, "predict": 1, "evaluate": 1, "collect_metrics": 1, "render_table": 2,
                    "figure_nlb_metrics": 1, "nlb_submission": 1, "all": 1}
    run_workflow(workdir, [my_data], executor="local")
    table = pd.read_csv(workdir / "results" / "tables" / "nlb_study.csv")
    assert list(table["dataset"]) == [f"{dataset}_20ms"] and table["co-bps"].notna().all()


def test_workflow_runs_from_a_clone_in_a_directory_with_a_space(tmp_path):
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    clone = tmp_path / "my clone"
    for name in filter(None, listed):
        if (REPO / name).is_file():  # working-tree state: uncommitted edits in, deleted files out
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    workdir = tmp_path / "work dir"
    target = "results/runs/reaching_20ms/smoothing/seed0/metrics.json"
    jobs = run_workflow(workdir, [clone / "tests" / "configs" / "tiny.yaml"], targets=[target], executor="local",
                        repo=clone)
    assert jobs["simulate_reaching"] == jobs["bin_nwb"] == jobs["train"] == jobs["evaluate"] == 1
    assert "co-bps" in json.loads((workdir / target).read_text())



def plan_commands(tmp_path, targets, *configfiles):
    """What `snakemake -n -p` prints for `targets` with the tiny config (and `configfiles` over it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "-d", str(tmp_path), *targets,
         "--configfile", str(TINY_CONFIG), *configfiles],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_only_a_kind_driving_ray_trains_under_the_cluster_launcher(tmp_path):
    """AutoLFADS (capability ray_cluster) trains under scripts/ray_slurm.sh with its resources.cpus as
    threads; other kinds train as before, and may not ask for several nodes."""
    auto, gru = "results/runs/reaching_20ms/autolfads_tiny/seed0/model.pt", "results/runs/lorenz/gru-L3/seed0/model.pt"
    returncode, out = plan_commands(tmp_path, [auto, gru])
    assert returncode == 0, out[-3000:]
    trains = [line for line in out.splitlines() if "run_model.py train" in line]
    launched = [line for line in trains if re.search(r"^Shell command: bash \S*/scripts/ray_slurm\.sh python ", line)]
    assert len(trains) == 2 and len(launched) == 1 and "autolfads_tiny" in launched[0], trains
    assert "--threads 2 " in launched[0]
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text("models: {gru: {resources: {nodes: 2}}}")
    returncode, out = plan_commands(tmp_path, [gru], str(nodes))
    assert returncode != 0 and "key 'models.gru.resources.nodes': 2 nodes, but a sequential_autoencoder job runs on one" in out, out[-3000:]
