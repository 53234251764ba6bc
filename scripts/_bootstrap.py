"""Put this checkout's package first on the path, so a rule runs the code it was planned with even
in a conda env that provides only the dependencies. Imported for its side effect by every script."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
