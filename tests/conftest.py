import os
import sys
from pathlib import Path

# test helpers (workflow_api, nwb_factory, ...) live beside the tests
sys.path.insert(0, str(Path(__file__).parent))
# workflow jobs run `python`: make it this interpreter, also when its venv is not activated
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
