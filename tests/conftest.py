"""Shared test setup: tests import their helpers (tiny_models, servers) from this folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
