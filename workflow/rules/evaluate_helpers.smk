# Input functions of the scoring rules (evaluate.smk).


def test_targets_argument(wildcards):
    """In the NLB test phase, score against the public test-split ground truth when configured."""
    study = config.get("nlb_study") or {}
    if study.get("phase") != "test" or not study.get("test_targets"):
        return ""
    if re.sub(r"_[0-9]+ms$", "", wildcards.dataset) not in config["nlb_sources"]:
        return ""
    return f"--test-targets {shlex.quote(study['test_targets'])}"
