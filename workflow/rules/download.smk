# Neural Latents Benchmark recordings from DANDI. Runs on the submitting host (compute nodes often
# have no internet); a user with the files already sets nlb_sources.<dataset>.local_dir instead.


localrules:
    download_nlb,


rule download_nlb:
    output:
        "results/data/nwb/{dataset}/manifest.json",
    log:
        "results/logs/download_nlb/{dataset}.log",
    wildcard_constraints:
        dataset="|".join(config["nlb_sources"]) or "^$",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/download_dandi.py",
        source=lambda wildcards: config["nlb_sources"][wildcards.dataset],
        local_dir=lambda wildcards: (
            f"--local-dir {shlex.quote(config['nlb_sources'][wildcards.dataset]['local_dir'])}"
            if config["nlb_sources"][wildcards.dataset].get("local_dir")
            else ""
        ),
    shell:
        "python {params.script:q} --dandiset {params.source[dandiset]}"
        " --version {params.source[version]} --out-dir results/data/nwb/{wildcards.dataset}"
        " {params.local_dir} --local-dir-key nlb_sources.{wildcards.dataset}.local_dir"
        " --manifest {output:q} > {log:q} 2>&1"
