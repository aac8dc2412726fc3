"""Shared test setup: tests import their helpers (tiny_models, servers) from this folder.

No model hub is reachable here: hub mode is switched off before transformers is imported, so a hub id
fails at once with a clear error instead of after a minute of retries.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))
