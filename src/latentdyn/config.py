"""Config checking with one clear line per error, before Snakemake fills the schema's defaults."""

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match


class ConfigError(ValueError):
    pass


def check_config(config, schema_path, source="config"):
    """Raise ConfigError naming the offending key if `config` does not match the JSON schema."""
    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return
    key = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    raise ConfigError(f"{source}: key '{key}': {error.message}")
