"""Helpers of the bot tests; the running `stack` itself comes from tests/kate_stack.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kate_stack import KATE  # noqa: F401 - the bot tests import it from here

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def domain():
    return yaml.safe_load((ROOT / "bot" / "domain.yml").read_text(encoding="utf-8"))


def variants(domain: dict, response: str, language: str) -> list[str]:
    """The texts a response can take in one language."""
    return [v["text"] for v in domain["responses"][response] if v["condition"][0]["value"] == language]
