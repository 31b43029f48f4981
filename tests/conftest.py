"""Test-wide setup: shared test helpers in tests/ (e.g. synthetic_voices) are importable
from the test subfolders."""
import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
