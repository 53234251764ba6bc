# Train one model on one dataset with one seed, then predict from it: two jobs, so that a prediction
# that fails or is killed (a time limit during posterior sampling, a full disk) reruns alone and never
# discards the trained model. Every model kind goes through these rules.
# model.pt (the fitted model) is declared, so --forcerun and --delete-all-output remove it; the
# resumable state of a killed training job (training/) is not, so a rerun of the same run resumes from it.
# A model named <model>-P<n> starts from the weights of <model> pretrained on n fully observed trials.
#
# The attractor study's runs of one model (every system and seed of a generator and latent size) train
# in one job as one stacked model (train_stack; training/stacked.py), when the model's kind can: each
# run's model.pt is what `train` would write. Its model.pt files are update() outputs: a stack job
# keeps a run whose model.pt holds that run (same settings, data and seed), so naming one run's output
# after removing its model.pt trains that run alone (a stack of one); remove a model.pt to retrain it.
# (Snakemake touches every output of a job that ran, so the kept runs' predictions rerun too.)
# A kind that drives Ray (AutoLFADS) trains under scripts/ray_slurm.sh: under Slurm its one job starts a
# Ray cluster across its allocation (resources: cpus, gpu, nodes) for the driver; on one machine the
# driver starts a local Ray with the job's threads.


include: "train_helpers.smk"


rule train:
    input:
        data="results/data/binned/{dataset}.h5",
        pretrained=pretrained_weights,
    output:
        model="results/runs/{dataset}/{model}/seed{seed}/model.pt",
    log:
        "results/logs/train/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../envs/train.yaml"
    threads: train_threads
    resources:
        **RUN_RESOURCES,
        nodes=lambda wildcards: train_resource(
            wildcards.model, wildcards.dataset, "nodes"
        ),
    params:
        launcher=cluster_launcher,
        script=f"{SCRIPTS}/run_model.py",
        # prediction-only settings (posterior samples) are left out: changing them reruns `predict` alone
        arguments=lambda wildcards: run_arguments(wildcards, "train"),
    shell:
        "{params.launcher}python {params.script:q} train {params.arguments} --threads {threads}"
        " --out {output.model:q} > {log:q} 2>&1"


rule predict:
    input:
        data="results/data/binned/{dataset}.h5",
        pretrained=pretrained_weights,
        model="results/runs/{dataset}/{model}/seed{seed}/model.pt",
    output:
        "results/runs/{dataset}/{model}/seed{seed}/output.h5",
    log:
        "results/logs/predict/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]
    resources:
        **RUN_RESOURCES,
    params:
        script=f"{SCRIPTS}/run_model.py",
        arguments=lambda wildcards: run_arguments(wildcards, "predict"),
    shell:
        "python {params.script:q} predict {params.arguments} --threads {threads}"
        " --trained {input.model:q} --out {output:q} > {log:q} 2>&1"


if STACKS:

    ruleorder: train_stack > train

    rule train_stack:
        input:
            data=expand(
                "results/data/binned/{dataset}.h5",
                dataset=config["attractor_study"]["systems"],
            ),
        output:
            models=update(
                expand(
                    "results/runs/{dataset}/{{model}}/seed{seed}/model.pt",
                    dataset=config["attractor_study"]["systems"],
                    seed=config["attractor_study"]["seeds"],
                )
            ),
        log:
            "results/logs/train_stack/{model}.log",
        wildcard_constraints:
            model="|".join(re.escape(model) for model in STACKS),
        conda:
            "../../envs/train.yaml"
        threads: config["threads"]
        resources:
            **STACK_RESOURCES,
        params:
            script=f"{SCRIPTS}/run_model.py",
            arguments=stack_arguments,
        shell:
            "python {params.script:q} train-stack {params.arguments} --threads {threads}"
            " > {log:q} 2>&1"
