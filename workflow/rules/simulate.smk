# Synthetic datasets with ground truth. Quick, so they run on the submitting host.

ATTRACTOR_SYSTEMS = ["lorenz", "rossler", "arneodo"]


localrules:
    simulate_attractor,
    simulate_reaching,


rule simulate_attractor:
    output:
        "results/data/binned/{system}.h5",
    log:
        "results/logs/simulate_attractor/{system}.log",
    wildcard_constraints:
        system="|".join(ATTRACTOR_SYSTEMS),
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/simulate_attractor.py",
        settings=lambda wildcards: json_arg(config["attractors"]),
    shell:
        "python {params.script:q} --system {wildcards.system}"
        " --settings {params.settings} --out {output:q} > {log:q} 2>&1"


rule simulate_reaching:
    output:
        nwb="results/data/nwb/reaching/reaching.nwb",
        truth="results/data/nwb/reaching/reaching_truth.h5",
    log:
        "results/logs/simulate_reaching/reaching.log",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/simulate_reaching.py",
        settings=json_arg(config["reaching"]),
    shell:
        "python {params.script:q} --params-json {params.settings}"
        " --out {output.nwb:q} --truth {output.truth:q} > {log:q} 2>&1"


# Sparse-sampling datasets for SBTT (Zhu et al. 2021): the demo's latent Lorenz, the LFADS chaotic RNN,
# bandwidth masks of any binned dataset, and staggered-scan two-photon imaging (docs/formats.md).
localrules:
    simulate_sbtt_lorenz,
    simulate_chaotic_rnn,
    mask_bandwidth,
    simulate_two_photon,


rule simulate_sbtt_lorenz:
    output:
        "results/data/binned/sbtt_lorenz.h5",
    log:
        "results/logs/simulate_sbtt_lorenz.log",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/simulate_synthetic.py",
        settings=json_arg(config["sbtt_lorenz"]),
    shell:
        "python {params.script:q} --generator sbtt_lorenz"
        " --settings {params.settings} --out {output:q} > {log:q} 2>&1"


rule simulate_chaotic_rnn:
    output:
        "results/data/binned/chaotic_rnn.h5",
    log:
        "results/logs/simulate_chaotic_rnn.log",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/simulate_synthetic.py",
        settings=json_arg(config["chaotic_rnn"]),
    shell:
        "python {params.script:q} --generator chaotic_rnn"
        " --settings {params.settings} --out {output:q} > {log:q} 2>&1"


rule mask_bandwidth:
    input:
        "results/data/binned/{dataset}.h5",
    output:
        "results/data/binned/{dataset}_bw{bandwidth}.h5",
    log:
        "results/logs/mask_bandwidth/{dataset}_bw{bandwidth}.log",
    wildcard_constraints:
        bandwidth="|".join(str(b) for b in config["bandwidth_masks"]["bandwidths"]),
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/mask_bandwidth.py",
        seed=config["bandwidth_masks"]["seed"],
    shell:
        "python {params.script:q} --data {input:q} --bandwidth {wildcards.bandwidth}"
        " --seed {params.seed} --out {output:q} > {log:q} 2>&1"


# The first n trials of a seeded order of the training split: for SBTT experiment 4, fully observed data
# to pretrain dynamics on (models named <model>-P<n> then adapt them to a masked <dataset>_bw<k>); for the
# AutoLFADS experiments (small_data_study, cd_study), small training sets.
rule keep_full_trials:
    input:
        "results/data/binned/{dataset}.h5",
    output:
        "results/data/binned/{dataset}_full{n_trials}.h5",
    log:
        "results/logs/keep_full_trials/{dataset}_full{n_trials}.log",
    wildcard_constraints:
        n_trials=r"[1-9][0-9]*",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/keep_trials.py",
        seed=config["trial_subsets"]["seed"],
    shell:
        "python {params.script:q} --data {input:q} --n-trials {wildcards.n_trials}"
        " --seed {params.seed} --out {output:q} > {log:q} 2>&1"


# The generative study's unseen conditions: every training trial of the conditions withheld from
# <dataset> (generative_study.withheld_conditions) moved to its evaluation split.
rule withhold_conditions:
    input:
        "results/data/binned/{dataset}.h5",
    output:
        "results/data/binned/{dataset}_unseen.h5",
    log:
        "results/logs/withhold_conditions/{dataset}_unseen.log",
    wildcard_constraints:
        dataset="|".join(generative_sources()) or "^$",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/keep_trials.py",
        withheld=lambda wildcards: json_arg(
            config["generative_study"]["withheld_conditions"][wildcards.dataset]
        ),
    shell:
        "python {params.script:q} --data {input:q} --withhold {params.withheld}"
        " --out {output:q} > {log:q} 2>&1"


rule simulate_two_photon:
    output:
        subframe="results/data/binned/two_photon_subframe.h5",
        frame="results/data/binned/two_photon_frame.h5",
    log:
        "results/logs/simulate_two_photon.log",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/simulate_two_photon.py",
        settings=json_arg(config["two_photon"]),
    shell:
        "python {params.script:q} --settings {params.settings}"
        " --out-subframe {output.subframe:q} --out-frame {output.frame:q} > {log:q} 2>&1"
