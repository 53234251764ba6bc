"""One exception type for bad input, so entry points can print a single clear line."""


class InputError(ValueError):
    """Bad input data or config. The message names the file and the field at fault."""

    def __init__(self, path, field, problem):
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: field '{field}': {problem}")
