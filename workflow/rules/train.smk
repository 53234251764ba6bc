# Train one model on one dataset with one seed. Every model kind goes through this rule.


rule train:
    input:
        "results/data/binned/{dataset}.h5",
    output:
        "results/runs/{dataset}/{model}/seed{seed}/output.h5",
    log:
        "results/logs/train/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]
    resources:
        gpu=lambda wildcards: train_resource(wildcards.model, "gpu"),
        mem_mb=lambda wildcards: train_resource(wildcards.model, "mem_mb"),
        runtime=lambda wildcards: train_resource(wildcards.model, "runtime"),
    params:
        script=f"{SCRIPTS}/train.py",
        model=lambda wildcards: json_arg(model_params(wildcards.model)),
        device=config["device"],
    shell:
        "python {params.script} --data {input} --model-name {wildcards.model}"
        " --model {params.model} --seed {wildcards.seed} --device {params.device}"
        " --threads {threads} --out {output} > {log} 2>&1"
