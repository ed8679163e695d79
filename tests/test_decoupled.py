"""Decoupled classifiers on frozen embeddings: by-hand values and behaviour that could fail."""

import math

import numpy as np
import pytest

from ltspk.decoupled import choose_power, crt, lws, ncm, tau_normalized_logits

W = [[2.0, 0.0], [0.0, 1.0]]


def test_tau_norm_by_hand():
    r = 1 / math.sqrt(2)
    x = [[1.0, 1.0]]
    assert tau_normalized_logits(W, x, 1.0).tolist()[0] == pytest.approx([r, r])
    assert tau_normalized_logits(W, x, 0.0).tolist()[0] == pytest.approx([2 * r, r])
    assert tau_normalized_logits(W, x, 2.0).tolist()[0] == pytest.approx([r / 2, r])


def test_choose_power_on_validation():
    # x = [1, 1.2]/|.|: class 0 scores 1.28 / 2^p, class 1 scores .768 -> right once p > 0.737
    best, scores = choose_power(W, [[1.0, 1.2]], [1])
    assert scores[0.7] == 0.0 and scores[0.8] == 1.0 and best == 0.8  # ties go to the least change (smallest p)


def test_crt_leaves_the_global_generator_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    crt(np.eye(3), [0, 1, 2], 3, epochs=1, min_steps=1, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_ncm_by_hand():
    x = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    f = ncm(x, [0, 0, 1], 2)
    z = x - x.mean(0)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    c0 = z[0] + z[1]
    c0 /= np.linalg.norm(c0)
    q = np.array([0.0, 1.0]) - x.mean(0)
    q /= np.linalg.norm(q)
    assert f([[0.0, 1.0]]).tolist()[0] == pytest.approx([q @ c0, q @ z[2]], rel=1e-5)


def test_lws_rescues_the_minority_class():
    y = np.array([0] * 90 + [1] * 10)
    logits = np.where(y[:, None] == 0, [1.0, 0.2], [1.0, 0.8])  # the frozen classifier always says 0
    assert (logits.argmax(1) == y).mean() == 0.9
    s = lws(logits, y, epochs=30, lr=0.5)
    pred = (logits * s).argmax(1)
    assert (pred[y == 1] == 1).all() and (pred[y == 0] == 0).all()


def test_crt_learns_a_balanced_classifier():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 3
    y = np.array([0] * 200 + [1] * 20 + [2] * 4)
    x = centres[y] + 0.3 * rng.standard_normal((len(y), 3))
    f = crt(x, y, 3, epochs=10)
    for c in range(3):
        assert (f(x[y == c]).argmax(1).numpy() == c).mean() > 0.9


def test_small_corpora_get_a_minimum_number_of_steps():
    from ltspk.decoupled import _epochs_for

    assert _epochs_for(100_000, 10, 256, 500) == 10  # large: the paper's epochs
    assert _epochs_for(931, 10, 256, 500) == 125  # 4 steps an epoch -> 125 epochs = 500 steps
