"""Helpers of the bot tests; the running `stack` itself comes from tests/kate_stack.py."""

from __future__ import annotations

from pathlib import Path

import yaml
from kate_stack import KATE  # noqa: F401 - the bot tests import it from here

ROOT = Path(__file__).resolve().parents[2]


def demo_answer(key: str, language: str = "en") -> str:
    """The demo company's scripted answer (`kate up` loads them with the demo intranet)."""
    demo = yaml.safe_load((ROOT / "knowledge" / "demo_site" / "hr-content.yml").read_text(encoding="utf-8"))
    return demo["answers"][key][language]
