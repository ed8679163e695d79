"""Decoupled classifier learning on frozen, cached embeddings (Kang et al., ICLR 2020).

Stage 2 never touches audio: it works on embedding matrices, so it takes seconds.

- cRT: a re-initialised linear classifier trained with class-balanced sampling
  (SGD momentum 0.9, lr 0.2 with cosine decay to 0, 10 epochs by default).
  Epochs are raised until at least ``min_steps`` SGD steps are taken (default 500): Kang's
  10 ImageNet-LT epochs are ~4,500 steps, while 10 epochs of a small corpus can be a few dozen,
  which leaves the new classifier under-trained (seen on the demo corpus: 74% vs 95%).
- tau-normalisation: w_i <- w_i / ||w_i||^p of the stage-1 classifier, bias dropped; the
  power p (the paper's tau; ``tau_norm_power`` here, to keep it apart from the other taus)
  swept over [0, 2] step 0.1 and chosen on a validation split (p = 0 is the plain classifier).
- LWS: logits s_i * f_i(x) of the frozen stage-1 classifier with a learnable per-class scale
  s (init 1), class-balanced sampling, 5 epochs (and at least ``min_steps`` steps).
- NCM: subtract the training mean, L2-normalise, class centroids; cosine to the centroids.
Embeddings are L2-normalised before cRT and tau-norm (speaker embeddings are scored by angle).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ltspk.data.samplers import ClassAwareSampler
from ltspk.heads.base import Tunable
from ltspk.records import choose_on_validation

TAU_NORM = Tunable("tau_norm_power", "tau_norm_powers", tuple(np.round(np.arange(0, 2.0001, 0.1), 2).tolist()))


def _t(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def l2n(x):
    return F.normalize(_t(x), dim=1)


def _epochs_for(n, epochs, batch_size, min_steps):
    return max(int(epochs), math.ceil(min_steps / max(1, math.ceil(n / batch_size))))


def _balanced_batches(labels, epochs, batch_size, seed):
    sampler = ClassAwareSampler(labels, q=0.0, seed=seed)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order = np.fromiter(iter(sampler), dtype=np.int64, count=len(sampler))
        for a in range(0, len(order), batch_size):
            yield epoch, torch.from_numpy(order[a : a + batch_size])


def _fit_balanced(params, loss_of, y, epochs, lr, batch_size, weight_decay, seed, min_steps):
    """SGD (momentum 0.9, cosine decay to 0) over class-balanced batches: the stage-2 loop
    cRT and LWS share. ``loss_of(batch_indices) -> loss``."""
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    epochs = _epochs_for(len(y), epochs, batch_size, min_steps)
    steps = epochs * math.ceil(len(y) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    for _, idx in _balanced_batches(np.asarray(y), epochs, batch_size, seed):
        loss = loss_of(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def crt(x, y, n_classes, epochs=10, lr=0.2, batch_size=256, weight_decay=5e-4, seed=0, min_steps=500):
    """Train a fresh linear classifier on frozen embeddings with class-balanced sampling.
    Returns a function: embeddings -> logits. Its initialisation draws from its own
    generator (``seed``), never from torch's global one."""
    x, y = l2n(x), torch.as_tensor(np.asarray(y), dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(x.shape[1])  # nn.Linear's default initialisation range
    w = torch.empty(n_classes, x.shape[1]).uniform_(-bound, bound, generator=gen).requires_grad_()
    b = torch.empty(n_classes).uniform_(-bound, bound, generator=gen).requires_grad_()
    _fit_balanced([w, b], lambda idx: F.cross_entropy(F.linear(x[idx], w, b), y[idx]), y.numpy(), epochs, lr,
                  batch_size, weight_decay, seed, min_steps)
    w, b = w.detach(), b.detach()
    return lambda e: F.linear(l2n(e), w, b)


def tau_normalized_logits(weight, x, power):
    """<x/||x||, w_i / ||w_i||^power>, bias dropped."""
    w = _t(weight)
    return l2n(x) @ (w / w.norm(dim=1, keepdim=True).clamp_min(1e-12).pow(power)).t()


def choose_power(weight, x_val, y_val, powers=None):
    """The power in [0, 2] (step 0.1) with the best validation top-1 accuracy, and every score;
    ties go to the smallest power (the least change to the classifier)."""
    powers = TAU_NORM.grid if powers is None else powers
    y_val = np.asarray(y_val)
    scores = {float(p): float((tau_normalized_logits(weight, x_val, p).argmax(1).numpy() == y_val).mean())
              for p in powers}
    return choose_on_validation(scores, TAU_NORM.neutral), scores


def lws(frozen_logits, y, epochs=5, lr=0.2, batch_size=256, seed=0, min_steps=500):
    """Learn a per-class scale s on the frozen classifier's logits. Returns s (numpy)."""
    z, y = _t(frozen_logits), torch.as_tensor(np.asarray(y), dtype=torch.long)
    s = torch.ones(z.shape[1], requires_grad=True)
    _fit_balanced([s], lambda idx: F.cross_entropy(z[idx] * s, y[idx]), y.numpy(), epochs, lr, batch_size, 0.0,
                  seed, min_steps)
    return s.detach().numpy()


def ncm_centroids(x_train, y_train, n_classes):
    """(training mean [1, D], unit class centroids [C, D]) of the centred, L2-normalised embeddings."""
    x = _t(x_train)
    mean = x.mean(0, keepdim=True)
    z = F.normalize(x - mean, dim=1)
    y = torch.as_tensor(np.asarray(y_train), dtype=torch.long)
    cent = torch.zeros(n_classes, x.shape[1]).index_add_(0, y, z)
    return mean, F.normalize(cent, dim=1)


def ncm(x_train, y_train, n_classes):
    """Centroid classifier. Returns a function: embeddings -> cosine to each class centroid."""
    mean, cent = ncm_centroids(x_train, y_train, n_classes)
    return lambda e: F.normalize(_t(e) - mean, dim=1) @ cent.t()
