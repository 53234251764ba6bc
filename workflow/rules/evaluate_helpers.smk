# Input functions of the scoring rules (evaluate.smk).


def test_targets_file():
    """The public test-split ground truth (nlb_tools' eval_data_test.h5) in the NLB test phase, when
    configured; else None."""
    study = config.get("nlb_study") or {}
    if study.get("phase") != "test" or not study.get("test_targets"):
        return None
    return study["test_targets"]


def test_targets_argument(wildcards):
    """In the NLB test phase, score against the public test-split ground truth when configured."""
    targets = test_targets_file()
    if targets is None:
        return ""
    if re.sub(r"_[0-9]+ms$", "", wildcards.dataset) not in config["nlb_sources"]:
        return ""
    return f"--test-targets {shlex.quote(targets)}"
