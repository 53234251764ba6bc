"""The exception types for bad input and bad config, so entry points can print a single clear line."""


class InputError(ValueError):
    """Bad input data or config. The message names the file and the field at fault."""

    def __init__(self, path, field, problem):
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: field '{field}': {problem}")


class ConfigError(ValueError):
    """A config that cannot run. The message names the config key at fault."""
