# Fixed points of the learned dynamics and the eigenvalues of their Jacobians.


rule fixed_points:
    input:
        output="results/runs/{dataset}/{model}/seed{seed}/output.h5",
        model="results/runs/{dataset}/{model}/seed{seed}/model.pt",
    output:
        "results/runs/{dataset}/{model}/seed{seed}/fixed_points.h5",
    log:
        "results/logs/fixed_points/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        script=f"{SCRIPTS}/fixed_points.py",
        settings=json_arg(config["fixed_points"]),
    shell:
        "python {params.script:q} --output {input.output:q} --settings {params.settings}"
        " --out {output:q} > {log:q} 2>&1"
