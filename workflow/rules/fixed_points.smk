# Fixed points of the learned dynamics and the eigenvalues of their Jacobians.


rule fixed_points:
    input:
        "results/runs/{dataset}/{model}/seed{seed}/output.h5",
    output:
        "results/runs/{dataset}/{model}/seed{seed}/fixed_points.h5",
    params:
        settings=json_arg(config["fixed_points"]),
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "results/logs/fixed_points/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../envs/train.yaml"
    shell:
        "python {SCRIPTS}/fixed_points.py --output {input} --settings {params.settings}"
        " --out {output} > {log} 2>&1"
