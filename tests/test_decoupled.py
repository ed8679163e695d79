"""Decoupled classifiers on frozen embeddings: by-hand values and behaviour that could fail."""

import math

import numpy as np
import pytest

from ltspk.longtail.decoupled import choose_power, crt, fit_linear, lws, ncm, tau_normalized_logits

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
    from ltspk.longtail.decoupled import _epochs_for

    assert _epochs_for(100_000, 10, 256, 500) == 10  # large: the paper's epochs
    assert _epochs_for(931, 10, 256, 500) == 125  # 4 steps an epoch -> 125 epochs = 500 steps


# ------------------------------------------------------- the shared stage-2 loop, by hand


def sgd_by_hand(x, y, n_classes, batches, lr, weight_decay, seed, offset=0.0):
    """float64 softmax regression on l2n(x) + offset: nn.Linear's initialisation from
    Generator(seed), then one SGD step (momentum 0.9, weight decay on W and b) per batch, the
    learning rate on a cosine from ``lr`` to 0 over all the steps. Returns (W, b)."""
    import torch

    x = np.asarray(x, np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    gen, bound = torch.Generator().manual_seed(seed), 1 / math.sqrt(x.shape[1])
    w = torch.empty(n_classes, x.shape[1]).uniform_(-bound, bound, generator=gen).double().numpy()
    b = torch.empty(n_classes).uniform_(-bound, bound, generator=gen).double().numpy()
    buf = None
    for t, idx in enumerate(batches):
        z = x[idx] @ w.T + b + offset
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(idx)), np.asarray(y)[idx]] -= 1
        p /= len(idx)  # d mean cross-entropy / d logits
        g = (p.T @ x[idx] + weight_decay * w, p.sum(0) + weight_decay * b)
        buf = g if buf is None else (0.9 * buf[0] + g[0], 0.9 * buf[1] + g[1])
        lr_t = lr * (1 + math.cos(math.pi * t / len(batches))) / 2
        w, b = w - lr_t * buf[0], b - lr_t * buf[1]
    return w, b


X3 = np.array([[1.0, 0.2], [0.8, -0.3], [0.9, 0.1], [0.7, 0.4], [-0.2, 1.0], [0.1, -1.0]])
Y3 = np.array([0, 0, 0, 0, 1, 2])


def test_crt_equals_class_balanced_sgd_by_hand():
    from ltspk.data.samplers import ClassAwareSampler

    # one full-size batch per epoch, 3 epochs = 3 steps: the indices drawn class-balanced (q = 0)
    sampler = ClassAwareSampler(Y3, q=0.0, seed=4)
    batches = []
    for e in range(3):
        sampler.set_epoch(e)
        batches.append(np.array(list(sampler)))
    assert np.bincount(Y3[np.concatenate(batches)], minlength=3).min() >= 3  # the rare classes are drawn
    w, b = sgd_by_hand(X3, Y3, 3, batches, lr=0.5, weight_decay=0.01, seed=4)
    q = np.array([[0.3, 0.9], [1.0, -0.5]])
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    got = crt(X3, Y3, 3, epochs=3, lr=0.5, batch_size=6, weight_decay=0.01, seed=4, min_steps=1)(q).numpy()
    np.testing.assert_allclose(got, qn @ w.T + b, rtol=1e-5, atol=1e-6)


def test_fit_linear_instance_sampling_with_a_logit_offset_by_hand():
    # q = 1: every sample once an epoch, so a full-size batch is the whole set whatever its order
    offset = np.array([0.0, -1.0, 0.5])
    w, b = sgd_by_hand(X3, Y3, 3, [np.arange(6)] * 4, lr=0.8, weight_decay=5e-4, seed=1, offset=offset)
    got_w, got_b = fit_linear(X3, Y3, 3, q=1.0, logit_offset=offset, epochs=4, lr=0.8, batch_size=6, seed=1,
                              min_steps=1)
    np.testing.assert_allclose(got_w.numpy(), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_b.numpy(), b, rtol=1e-5, atol=1e-6)
    # the sampling power reaches the sampler: class-balanced draws give another classifier
    w0, _ = fit_linear(X3, Y3, 3, q=0.0, logit_offset=offset, epochs=4, lr=0.8, batch_size=6, seed=1, min_steps=1)
    assert not np.allclose(w0.numpy(), w, atol=1e-3)


def test_balanced_batches_follow_the_sampling_power():
    from ltspk.longtail.decoupled import _balanced_batches

    y = np.array([0] * 95 + [1] * 5)
    inst = [(e, idx.numpy()) for e, idx in _balanced_batches(y, 2, 30, seed=0, q=1.0)]
    assert [e for e, _ in inst] == [0] * 4 + [1] * 4 and [len(i) for _, i in inst] == [30, 30, 30, 10] * 2
    for e in (0, 1):  # instance-balanced: each sample once an epoch
        assert sorted(np.concatenate([i for k, i in inst if k == e]).tolist()) == list(range(100))
    bal = np.concatenate([idx.numpy() for _, idx in _balanced_batches(y, 2, 30, seed=0)])  # default q = 0
    assert len(bal) == 200 and 70 <= (y[bal] == 1).sum() <= 130  # class 1 drawn about half the time, not 5%
