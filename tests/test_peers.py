"""`kate bench reader --peers`: the peers' report (the peers themselves are installed only by the benchmark,
in throwaway environments, never by the test suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import SHARED_QA_DEV
from measure.bench import PageSet, ReaderBench
from measure.peers import PINS, PeerRow, f1_items, render_peers


class FakeConfig:
    model = "offline:kate-reader-e5-small"


class FakeReader:  # render_peers only reads the model name and the device line
    config = FakeConfig()

    class device:
        type = "cpu"

    precision = "bf16"


def test_the_report_gives_the_ratio_to_the_fastest_peer_and_says_why_a_peer_did_not_run(monkeypatch):
    monkeypatch.setattr("measure.peers.machine_description", lambda reader: "CPU")
    sets = [(PageSet("demo", []), ReaderBench("demo", 10, 100, 50.0, 1.0, 1.0))]
    rows = [
        PeerRow("Kate's reader (bf16)", "this checkout", {"demo": 120.0}, 60.0),
        PeerRow("Haystack 2.x ExtractiveReader", "haystack-ai 2.18.1", {"demo": 30.0}, 58.0),
        PeerRow("transformers 4.x question-answering pipeline", "transformers 4.57", {"demo": 40.0}, 59.0),
        PeerRow("broken", problem="pip install failed: no network"),
    ]
    text = render_peers(rows, sets, FakeReader(), 120, "kate bench reader --peers haystack,transformers4")
    assert "- demo: **3.0x** (transformers 4.x question-answering pipeline)" in text
    assert "| broken | not run: pip install failed: no network |" in text
    assert "| Haystack 2.x ExtractiveReader | haystack-ai 2.18.1 | 30.0 | 58.0 |" in text


def test_peers_pin_the_cpu_torch_and_the_major_versions_users_run():
    for pins in PINS.values():
        assert "torch==2.13.0" in pins  # any other torch pulls the CUDA wheels
        assert any(p.startswith("transformers") and ">=4" in p and "<5" in p for p in pins)
    assert any(p.startswith("haystack-ai>=2") and "<3" in p for p in PINS["haystack"])


@pytest.mark.skipif(not SHARED_QA_DEV.is_dir(), reason="needs ../shared/data/qa/dev")
def test_f1_items_come_from_three_languages():
    items = f1_items(Path(SHARED_QA_DEV), 5)
    assert len(items) == 15 and {it.language for it in items} == {"en", "fr", "ja"}
    assert all(any(a in it.context for a in it.answers) for it in items)
