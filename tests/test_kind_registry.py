"""The model kind registry (models/kinds.py): kinds found from their packages and from the
`latentdyn.kinds` entry points of installed distributions, their kind.yaml checked, and everything that
lists kinds (the config schema, the studies' checks, the latency goal) derived from it."""

import sys

import pytest

from latentdyn.config import check_config, check_semantics
from latentdyn.errors import ConfigError
from latentdyn.models.kinds import get_kind, kind_names, kind_packages, latency_kinds, resolve_model
from workflow_api import REPO

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
MODELS_DIR = REPO / "src" / "latentdyn" / "models"
TOY_KIND = """\
description: a lab's own kind, installed from its distribution
gradient_trained: false
resources: {gpu: 0, mem_mb: 100, runtime: 1}
colour: tab:olive
schema:
  required: []
  properties:
    width: {type: integer, minimum: 1, default: 3}
"""
TOY_MODEL = '''\
def build(params, shapes):
    return {"width": params["width"]}


def fit(model, prepared, params):
    return model


def predict(model, prepared, params, device):
    return {}
'''


@pytest.fixture
def fresh_registry():
    """The registry read again in the test, and again after it: it caches what it found."""
    kind_packages.cache_clear()
    get_kind.cache_clear()
    yield
    kind_packages.cache_clear()
    get_kind.cache_clear()


def install_lab_kind(tmp_path, monkeypatch, entry_points, kind_yaml=TOY_KIND):
    """A distribution `toylab` on sys.path whose package toylab.lab_gpfa holds a kind, registered by the
    entry points `entry_points` ("<name> = <package>" lines) of the group latentdyn.kinds."""
    package = tmp_path / "toylab" / "lab_gpfa"
    package.mkdir(parents=True)
    (tmp_path / "toylab" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "kind.yaml").write_text(kind_yaml)
    (package / "model.py").write_text(TOY_MODEL)
    dist_info = tmp_path / "toylab-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: toylab\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[latentdyn.kinds]\n" + "\n".join(entry_points) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [name for name in sys.modules if name.split(".")[0] == "toylab"]:  # another test's toylab
        monkeypatch.delitem(sys.modules, name)


def test_every_package_with_a_kind_yaml_is_a_kind():
    packages = sorted(path.parent.name for path in MODELS_DIR.glob("*/kind.yaml"))
    assert kind_names() == tuple(packages)
    assert all(get_kind(name).package == f"latentdyn.models.{name}" for name in packages)


def test_a_kind_from_an_installed_distribution_is_registered(tmp_path, monkeypatch, fresh_registry):
    install_lab_kind(tmp_path, monkeypatch, ["lab_gpfa = toylab.lab_gpfa"])
    assert "lab_gpfa" in kind_names()
    kind = get_kind("lab_gpfa")
    assert kind.package == "toylab.lab_gpfa" and kind.colour == "tab:olive" and not kind.gradient_trained
    assert kind.implementation().__name__ == "toylab.lab_gpfa.model"
    assert resolve_model("mine", {"kind": "lab_gpfa"})["width"] == 3


def test_an_entry_point_shadowing_a_built_in_kind_is_a_config_error(tmp_path, monkeypatch, fresh_registry):
    install_lab_kind(tmp_path, monkeypatch, ["smoothing = toylab.lab_gpfa"])
    with pytest.raises(ConfigError, match=r"^model kind 'smoothing': registered twice, as latentdyn\.models\.smoothing"
                                          r" and by the latentdyn\.kinds entry point 'smoothing = toylab\.lab_gpfa'"):
        kind_names()


def test_a_kind_yaml_without_a_required_field_is_named(tmp_path, monkeypatch, fresh_registry):
    install_lab_kind(tmp_path, monkeypatch, ["lab_gpfa = toylab.lab_gpfa"], TOY_KIND.replace("colour: tab:olive\n", ""))
    with pytest.raises(ConfigError, match=r"^model kind 'lab_gpfa': toylab\.lab_gpfa/kind\.yaml: .*'colour' is a required"):
        get_kind("lab_gpfa")


def test_the_config_schema_lists_the_registered_kinds():
    with pytest.raises(ConfigError) as error:
        check_config({"models": {"mine": {"kind": "transformer"}}}, SCHEMA)
    assert "models.mine.kind" in str(error.value) and str(list(kind_names())) in str(error.value)


@pytest.mark.parametrize(
    ("params", "fits"),
    [
        ({"kind": "smoothing", "kernel_sd_ms": 40}, True),
        ({"kind": "lfads", "reconstruction": "gaussian"}, True),
        ({"kind": "lfads"}, False),  # Poisson by default
        ({"kind": "autolfads", "reconstruction": "gaussian"}, True),  # as the kind it extends
        ({"kind": "ndt"}, False),
    ],
)
def test_continuous_data_is_what_the_kind_declares(params, fits):
    assert get_kind(params["kind"]).fits_continuous_data(resolve_model("m", params)) is fits


def test_a_two_photon_model_that_cannot_fit_df_f_is_named_with_the_kinds_that_can():
    config = {"models": {"counts_only": {"kind": "lfads"}}, "two_photon_study": {"models": ["counts_only"]}}
    with pytest.raises(ConfigError) as error:
        check_semantics(config)
    assert str(error.value) == (
        "config: key 'two_photon_study.models': 'counts_only' (lfads, reconstruction: poisson) cannot fit dF/F;"
        " use a model of kind autolfads with reconstruction: gaussian, or lfads with reconstruction: gaussian, or smoothing"
    )


def test_the_latency_goal_compares_the_kinds_declaring_its_roles():
    assert latency_kinds() == ("ndt", "lfads")
