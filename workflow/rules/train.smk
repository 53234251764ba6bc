# Train one model on one dataset with one seed. Every model kind goes through this rule.
# model.pt (the fitted model) is declared, so --forcerun and --delete-all-output remove it; the
# resumable state of a killed job (training/) is not, so a rerun of the same run resumes from it.
# A model named <model>-P<n> starts from the weights of <model> pretrained on n fully observed trials.


rule train:
    input:
        data="results/data/binned/{dataset}.h5",
        pretrained=pretrained_weights,
    output:
        output="results/runs/{dataset}/{model}/seed{seed}/output.h5",
        model="results/runs/{dataset}/{model}/seed{seed}/model.pt",
    log:
        "results/logs/train/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]
    resources:
        gpu=lambda wildcards: train_resource(wildcards.model, wildcards.dataset, "gpu"),
        mem_mb=lambda wildcards: train_resource(
            wildcards.model, wildcards.dataset, "mem_mb"
        ),
        runtime=lambda wildcards: train_resource(
            wildcards.model, wildcards.dataset, "runtime"
        ),
    params:
        script=f"{SCRIPTS}/train.py",
        model=lambda wildcards: json_arg(
            model_params(wildcards.model, wildcards.dataset)
        ),
        device=config["device"],
        init=lambda wildcards, input: (
            f"--init-from {shlex.quote(input.pretrained)}" if input.pretrained else ""
        ),
    shell:
        "python {params.script:q} --data {input.data:q} --model-name {wildcards.model}"
        " --model {params.model} --seed {wildcards.seed} --device {params.device} {params.init}"
        " --threads {threads} --out {output.output:q} > {log:q} 2>&1"
