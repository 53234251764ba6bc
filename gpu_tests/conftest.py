import sys
from pathlib import Path

import pytest
import torch

# the CPU suite's helpers (synthetic data, LFADS params) are shared
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def pytest_collection_modifyitems(items):
    """This suite is for GPU hosts (`make test-gpu`): without CUDA it fails loudly instead of skipping."""
    if not torch.cuda.is_available():
        raise pytest.UsageError("gpu_tests/ needs a CUDA device; run the CPU suite with `make test`")
