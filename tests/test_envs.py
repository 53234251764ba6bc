"""Every rule has a log and a pinned conda env, and each env provides what the rule's code imports."""

import ast
import re
import subprocess
import sys

from pathlib import Path

import pytest
import yaml

from latentdyn.models.kinds import get_kind, kind_names
from workflow_api import REPO

RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
# import name -> conda package name, where they differ
CONDA_NAMES = {"ray": "ray-tune", "torch": "pytorch", "sklearn": "scikit-learn", "yaml": "pyyaml",
               "matplotlib": "matplotlib-base", "seaborn": "seaborn-base"}
# rules that run no script of ours
NO_SCRIPT = {"all"}
# a pinned conda dependency, as every env writes it: "<package> =<version>"
PINNED = re.compile(r"[\w.-]+ =[0-9][\w.]*")


def rule_blocks():
    for path in RULE_FILES:
        # a rule may sit in an `if` block (train.smk's stack rule): indented
        for block in re.split(r"(?=^ *rule \w+:)", path.read_text(), flags=re.M)[1:]:
            yield re.match(r" *rule (\w+):", block).group(1), block


def module_path(name):
    path = REPO / "src" / Path(*name.split("."))
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"


def calls_kind_implementation(tree):
    """Whether the module calls `<kind>.implementation()`, which imports a kind's model.py by name."""
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "implementation"
        for node in ast.walk(tree)
    )


def third_party_imports(path, seen=None):
    """Top-level third-party modules imported by `path` and, transitively, by latentdyn modules it uses.

    A module calling a kind's `implementation()` imports every built-in kind's model.py at run time: their
    imports count as its own.
    """
    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    found = set()
    tree = ast.parse(path.read_text())
    if calls_kind_implementation(tree):
        for kind in kind_names():
            model = module_path(f"{get_kind(kind).package}.model")
            if model.exists():  # a kind installed from another distribution is not this repository's
                found |= third_party_imports(model, seen)
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            top = name.split(".")[0]
            if top == "latentdyn":
                target = module_path(name)
                if target.exists():
                    found |= third_party_imports(target, seen)
            elif top not in sys.stdlib_module_names and top != "_bootstrap":
                found.add(top)
    return found


def env_packages(env_file):
    deps = yaml.safe_load(env_file.read_text())["dependencies"]
    return {re.split(r"[ =<>]", d)[0] for d in deps if isinstance(d, str)}


RULES = list(rule_blocks())


def test_every_rule_snakemake_loads_is_checked():
    listed = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    assert sorted(name for name, _ in RULES) == sorted(listed)


@pytest.mark.parametrize(("name", "block"), RULES, ids=[name for name, _ in RULES])
def test_rule_has_log_and_pinned_env_providing_its_imports(name, block):
    if name in NO_SCRIPT:
        return
    assert "    log:" in block, f"rule {name} has no log"
    env = re.search(r'"\.\./\.\./(envs/\w+\.yaml)"', block)
    assert env, f"rule {name} names no conda env"
    env_file = REPO / env.group(1)
    deps = yaml.safe_load(env_file.read_text())["dependencies"]
    unpinned = [d for d in deps if isinstance(d, str) and not PINNED.fullmatch(d)]
    assert not unpinned, f"{env_file.name} has unpinned packages: {unpinned}"
    script = re.search(r'script=f"\{SCRIPTS\}/(\w+\.py)"', block)
    assert script, f"rule {name} calls no script"
    imports = third_party_imports(REPO / "scripts" / script.group(1))
    missing = {CONDA_NAMES.get(m, m) for m in imports} - env_packages(env_file)
    assert not missing, f"rule {name}: {env_file.name} lacks {sorted(missing)}"
