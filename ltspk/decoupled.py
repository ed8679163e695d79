"""Decoupled classifier learning on frozen, cached embeddings (Kang et al., ICLR 2020).

Stage 2 never touches audio: it works on embedding matrices, so it takes seconds.

- cRT: a re-initialised linear classifier trained with class-balanced sampling
  (SGD momentum 0.9, lr 0.2 with cosine decay to 0, 10 epochs by default).
  Epochs are raised until at least ``min_steps`` SGD steps are taken (default 500): Kang's
  10 ImageNet-LT epochs are ~4,500 steps, while 10 epochs of a small corpus can be a few dozen,
  which leaves the new classifier under-trained (seen on the demo corpus: 74% vs 95%).
- tau-normalisation: w_i <- w_i / ||w_i||^tau of the stage-1 classifier, bias dropped;
  tau swept over [0, 2] step 0.1 and chosen on a validation split.
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


def crt(x, y, n_classes, epochs=10, lr=0.2, batch_size=256, weight_decay=5e-4, seed=0, min_steps=500):
    """Train a fresh linear classifier on frozen embeddings with class-balanced sampling.
    Returns a function: embeddings -> logits."""
    torch.manual_seed(seed)
    x, y = l2n(x), torch.as_tensor(np.asarray(y), dtype=torch.long)
    lin = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.SGD(lin.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    epochs = _epochs_for(len(y), epochs, batch_size, min_steps)
    steps = epochs * math.ceil(len(y) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    for _, idx in _balanced_batches(y.numpy(), epochs, batch_size, seed):
        loss = F.cross_entropy(lin(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    lin.eval()
    return lambda e: lin(l2n(e)).detach()


def tau_normalized_logits(weight, x, tau):
    """<x/||x||, w_i / ||w_i||^tau>, bias dropped."""
    w = _t(weight)
    return l2n(x) @ (w / w.norm(dim=1, keepdim=True).clamp_min(1e-12).pow(tau)).t()


def choose_tau(weight, x_val, y_val, taus=None):
    """The tau in [0, 2] (step 0.1) with the best validation top-1 accuracy, and every score."""
    taus = np.round(np.arange(0, 2.0001, 0.1), 2) if taus is None else taus
    y_val = np.asarray(y_val)
    scores = {float(t): float((tau_normalized_logits(weight, x_val, t).argmax(1).numpy() == y_val).mean())
              for t in taus}
    best = max(scores, key=lambda t: (scores[t], -abs(t - 1.0)))  # ties: nearest to plain tau = 1
    return best, scores


def lws(frozen_logits, y, epochs=5, lr=0.2, batch_size=256, seed=0, min_steps=500):
    """Learn a per-class scale s on the frozen classifier's logits. Returns s (numpy)."""
    z, y = _t(frozen_logits), torch.as_tensor(np.asarray(y), dtype=torch.long)
    s = torch.ones(z.shape[1], requires_grad=True)
    opt = torch.optim.SGD([s], lr=lr, momentum=0.9)
    epochs = _epochs_for(len(y), epochs, batch_size, min_steps)
    steps = epochs * math.ceil(len(y) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    for _, idx in _balanced_batches(y.numpy(), epochs, batch_size, seed):
        loss = F.cross_entropy(z[idx] * s, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return s.detach().numpy()


def ncm(x_train, y_train, n_classes):
    """Centroid classifier. Returns a function: embeddings -> cosine to each class centroid."""
    x = _t(x_train)
    mean = x.mean(0, keepdim=True)
    z = F.normalize(x - mean, dim=1)
    y = torch.as_tensor(np.asarray(y_train), dtype=torch.long)
    cent = torch.zeros(n_classes, x.shape[1]).index_add_(0, y, z)
    cent = F.normalize(cent, dim=1)
    return lambda e: F.normalize(_t(e) - mean, dim=1) @ cent.t()
