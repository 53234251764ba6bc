# Train one model on one dataset with one seed, then predict from it: two jobs, so that a prediction
# that fails or is killed (a time limit during posterior sampling, a full disk) reruns alone and never
# discards the trained model. Every model kind goes through these rules.
# model.pt (the fitted model) is declared, so --forcerun and --delete-all-output remove it; the
# resumable state of a killed training job (training/) is not, so a rerun of the same run resumes from it.
# A model named <model>-P<n> starts from the weights of <model> pretrained on n fully observed trials.
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
