"""`kate bench gpu`'s anchor: TensorRT's BERT-base figure scaled to Kate's reader by forward FLOPs."""

from __future__ import annotations

import pytest

from measure.bench_gpu import ANCHOR_SEQ_S, flops_per_sequence, scaled_anchor


def test_the_anchor_scales_with_the_models_forward_flops():
    assert flops_per_sequence(12, 768) == pytest.approx(70.67e9, rel=1e-3)  # BERT-base at 384 tokens
    assert scaled_anchor(12, 768) == pytest.approx(ANCHOR_SEQ_S)
    # half the width: a quarter of the dense work, half of attention's, so about 3.7x the sequences
    assert scaled_anchor(12, 384) == pytest.approx(ANCHOR_SEQ_S * 70.67 / 19.03, rel=1e-3)
