# Inference latency of the latency study's models (NDT vs LFADS): per trial at batch 1 and batched,
# against the number of bins, on the job's device. Models are built with random weights, not trained.


include: "benchmark_helpers.smk"


rule measure_latency:
    output:
        "results/tables/latency.csv",
    log:
        "results/logs/measure_latency.log",
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]
    resources:
        gpu=lambda wildcards: config["latency_study"]["gpu"],
        mem_mb=16000,
        runtime=60,
    params:
        script=f"{SCRIPTS}/measure_latency.py",
        models=lambda wildcards: json_arg(latency_models()),
        settings=lambda wildcards: json_arg(latency_settings()),
        device=config["device"],
    shell:
        "python {params.script:q} --models {params.models} --settings {params.settings}"
        " --device {params.device} --threads {threads} --out {output:q} > {log:q} 2>&1"
