"""Cosine and AS-norm scoring against values computed by hand."""

import numpy as np
import pytest

from ltspk.evaluation.scoring import EmbeddingTable, as_norm, cosine_trial_scores
from ltspk.runtime.errors import DataError


def test_cosine_by_hand():
    t = EmbeddingTable(["a", "b", "c"], [[3, 4], [4, 3], [0, -2]])
    s = cosine_trial_scores(t, ["a", "a", "b"], ["b", "c", "b"], chunk=2)
    assert s == pytest.approx([24 / 25, -0.8, 1.0])
    with pytest.raises(DataError, match="'zz' has no embedding"):
        cosine_trial_scores(t, ["a"], ["zz"])


def test_as_norm_by_hand():
    t = EmbeddingTable(["e", "t"], [[1, 0], [0, 1]])
    cohort = np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    # e vs cohort: 1, 0, -1 -> top-2: 1, 0 -> mean .5 std .5 ; t vs cohort: 0, 1, 0 -> top-2: 1, 0
    # raw = 0 -> 0.5 * ((0 - .5)/.5 + (0 - .5)/.5) = -1
    assert as_norm(t, ["e"], ["t"], cohort, top_k=2) == pytest.approx([-1.0])
