# latentdyn: latent-dynamics models of neural population activity, from data to paper figures.
# This file only loads and validates the config, includes one rule file per stage and defines `all`.
from pathlib import Path

from snakemake.utils import min_version, validate

from latentdyn.config import check_config, check_semantics, drop_switched_off_studies
from latentdyn.provenance import report_provenance

min_version("9.0")


# Every file of config/presets/ (named models, e.g. per-dataset settings of a kind), then the paper
# config over them; a --configfile of the user's goes over both.
for preset in sorted(Path(workflow.basedir, "config", "presets").glob("*.yaml")):
    workflow.configfile(str(preset))


configfile: f"{workflow.basedir}/config/config.yaml"


check_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
drop_switched_off_studies(config)
validate(config, "workflow/schemas/config.schema.yaml")
check_semantics(config)
# What the report's landing page (workflow/report/workflow.rst) states about what produced it.
config["report_provenance"] = report_provenance(
    workflow.basedir, workflow.config_settings.configfiles
)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset=r"[a-z0-9_]+",
    model=r"[a-z][a-z0-9_]*(-L[0-9]+)?(-P[0-9]+)?(-S)?",
    seed=r"[0-9]+",
    bin_ms=r"[0-9]+",


include: "workflow/rules/simulate.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/bin.smk"
include: "workflow/rules/multisession.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/benchmark.smk"
include: "workflow/rules/fixed_points.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/generative.smk"


rule all:
    default_target: True
    input:
        all_targets(),
