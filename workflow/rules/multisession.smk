# Multisession stitching (README §10): the simulated multisession set, each session binned as any NWB
# dataset (bin.smk) or, given binned by the user, checked and taken as it is, the sessions stitched into
# one binned dataset that a multisession model trains on (train.smk, as any run), and that run cut back
# into one output per session, <model>-S on the session's own dataset, so that the ordinary scoring
# (evaluate.smk) scores it beside <model> trained on it alone.


include: "multisession_helpers.smk"


localrules:
    simulate_multisession,
    take_binned_session,
    stitch_sessions,
    unstitch,


ruleorder: unstitch > predict


rule simulate_multisession:
    output:
        nwb=[
            f"results/data/nwb/{SIMULATED_MULTISESSION}/{s}.nwb"
            for s in MULTISESSION[SIMULATED_MULTISESSION]
        ],
        truth=[
            f"results/data/nwb/{SIMULATED_MULTISESSION}/{s}_truth.h5"
            for s in MULTISESSION[SIMULATED_MULTISESSION]
        ],
    log:
        "results/logs/simulate_multisession.log",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/simulate_multisession.py",
        settings=json_arg(config["multisession_reaching"]),
    shell:
        "python {params.script:q} --params-json {params.settings}"
        " --nwb {output.nwb:q} --truth {output.truth:q} > {log:q} 2>&1"


# The session's binned file with its layout and bin width checked, renamed to the session (the pattern
# "(?!)" matches nothing: no session given binned).
rule take_binned_session:
    input:
        lambda wildcards: BINNED_SESSIONS[wildcards.dataset],
    output:
        "results/data/binned/{dataset}_{bin_ms}ms.h5",
    log:
        "results/logs/take_binned_session/{dataset}_{bin_ms}ms.log",
    wildcard_constraints:
        dataset="|".join(BINNED_SESSIONS) or "(?!)",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/stitch_sessions.py",
    shell:
        "python {params.script:q} take --binned {input:q} --dataset {wildcards.dataset}"
        " --bin-ms {wildcards.bin_ms} --out {output:q} > {log:q} 2>&1"


rule stitch_sessions:
    input:
        lambda wildcards: [
            f"results/data/binned/{session}_{wildcards.bin_ms}ms.h5"
            for session in MULTISESSION[wildcards.dataset]
        ],
    output:
        "results/data/binned/{dataset}_{bin_ms}ms.h5",
    log:
        "results/logs/stitch_sessions/{dataset}_{bin_ms}ms.log",
    wildcard_constraints:
        dataset="|".join(MULTISESSION),
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/stitch_sessions.py",
    shell:
        "python {params.script:q} stitch --sessions {input:q} --name {wildcards.dataset}"
        " --out {output:q} > {log:q} 2>&1"


rule unstitch:
    input:
        unpack(stitched_run),
    output:
        "results/runs/{dataset}/{model}-S/seed{seed}/output.h5",
    log:
        "results/logs/unstitch/{dataset}/{model}-S/seed{seed}.log",
    wildcard_constraints:
        model=r"[a-z][a-z0-9_]*",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/stitch_sessions.py",
        session=lambda wildcards: session_of_dataset(wildcards.dataset)[1],
    shell:
        "python {params.script:q} unstitch --stitched {input.stitched:q} --output {input.output:q}"
        " --session {params.session} --session-data {input.session:q}"
        " --model-name {wildcards.model}-S --out {output:q} > {log:q} 2>&1"


rule multisession_decoding:
    input:
        unpack(decoding_inputs),
    output:
        "results/runs/{dataset}/{model}/seed{seed}/decoding.csv",
    log:
        "results/logs/multisession_decoding/{dataset}/{model}/seed{seed}.log",
    wildcard_constraints:
        dataset="(%s)_[0-9]+ms" % "|".join(MULTISESSION),
        model=r"[a-z][a-z0-9_]*",
    conda:
        "../../envs/evaluate.yaml"
    params:
        script=f"{SCRIPTS}/multisession_decoding.py",
    shell:
        "python {params.script:q} --stitched {input.stitched:q}"
        " --stitched-output {input.stitched_output:q} --sessions {input.sessions:q}"
        " --session-outputs {input.session_outputs:q} --dataset {wildcards.dataset}"
        " --model {wildcards.model} --seed {wildcards.seed} --out {output:q} > {log:q} 2>&1"


rule figure_multisession:
    input:
        table="results/tables/multisession_study.csv",
        decoding=multisession_decoding_tables(),
    output:
        png=report(
            "results/figures/multisession.png",
            category="Multisession stitching",
            caption="../report/multisession.rst",
        ),
        pdf="results/figures/multisession.pdf",
    log:
        "results/logs/figures/multisession.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
    shell:
        "python {params.script:q} multisession --table {input.table:q}"
        " --decoding {input.decoding:q} --out {output.png:q} > {log:q} 2>&1"


# Experiment 2 (issue 18): rate R² vs each session's training-trial count, stitched vs alone. Planned
# whenever the study runs (plot_gain_vs_trials says why, and what the figure shows when all counts match).
rule figure_multisession_trials:
    input:
        table="results/tables/multisession_study.csv",
        sessions=[
            f"results/data/binned/{session}.h5"
            for session in multisession_study_sessions()
        ],
    output:
        png=report(
            "results/figures/multisession_trials.png",
            category="Multisession stitching",
            caption="../report/multisession_trials.rst",
        ),
        pdf="results/figures/multisession_trials.pdf",
    log:
        "results/logs/figures/multisession_trials.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        sets=json_arg(multisession_study_sessions()),
    shell:
        "python {params.script:q} multisession-trials --table {input.table:q}"
        " --sessions {input.sessions:q} --sets {params.sets} --out {output.png:q} > {log:q} 2>&1"


rule figure_multisession_factors:
    input:
        unpack(decoding_inputs),
    output:
        png=report(
            "results/figures/multisession_factors_{dataset}_{model}_seed{seed}.png",
            category="Multisession stitching",
            caption="../report/multisession_factors.rst",
        ),
        pdf="results/figures/multisession_factors_{dataset}_{model}_seed{seed}.pdf",
    log:
        "results/logs/figures/multisession_factors_{dataset}_{model}_seed{seed}.log",
    wildcard_constraints:
        dataset="(%s)_[0-9]+ms" % "|".join(MULTISESSION),
        model=r"[a-z][a-z0-9_]*",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
    shell:
        "python {params.script:q} multisession-factors --sessions {input.sessions:q}"
        " --outputs {input.session_outputs:q} --title '{wildcards.dataset} {wildcards.model}'"
        " --out {output.png:q} > {log:q} 2>&1"
