"""Run the real workflow through the Snakemake Python API, in a scratch working directory."""

from collections import Counter
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import (
    ConfigSettings,
    DAGSettings,
    OutputSettings,
    ResourceSettings,
    StorageSettings,
)

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIG = REPO / "config" / "config.yaml"
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"


def run_workflow(workdir, configfiles=(), config=None, targets=("all",), executor="dryrun", cores=2, report=None,
                 repo=REPO):
    """Plan (executor='dryrun') or run the workflow of `repo`; returns a Counter of jobs needing a run, per rule."""
    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=cores),
            config_settings=ConfigSettings(configfiles=[repo / PAPER_CONFIG.relative_to(REPO), *configfiles],
                                           config=config or {}),
            storage_settings=StorageSettings(),
            snakefile=repo / "Snakefile",
            workdir=Path(workdir),
        )
        dag = workflow.dag(DAGSettings(targets=set(targets)))
        dag.execute_workflow(executor=executor)
        jobs = Counter(job.rule.name for job in dag.workflow_api._workflow.dag.needrun_jobs(exclude_finished=False))
        if report is not None:
            from snakemake.report.html_reporter import ReportSettings

            dag.create_report(reporter="html", report_settings=ReportSettings(path=Path(report)))
    return jobs
