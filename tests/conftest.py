import sys
from pathlib import Path

# test helpers (workflow_api, nwb_factory, ...) live beside the tests
sys.path.insert(0, str(Path(__file__).parent))
