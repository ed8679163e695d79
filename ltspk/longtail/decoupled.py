"""Decoupled classifier learning on frozen, cached embeddings (Kang et al., ICLR 2020).

Stage 2 never touches audio: it works on embedding matrices, so it takes seconds.

- cRT: a re-initialised linear classifier trained with class-balanced sampling
  (SGD momentum 0.9, lr 0.2 with cosine decay to 0, 10 epochs by default).
  Epochs are raised until at least ``min_steps`` SGD steps are taken (default 500): Kang's
  10 ImageNet-LT epochs are ~4,500 steps, while 10 epochs of a small corpus can be a few dozen,
  which leaves the new classifier under-trained (seen on the demo corpus: 74% vs 95%).
- tau-normalisation: w_i <- w_i / ||w_i||^p of the stage-1 classifier, bias dropped; the
  power p (the paper's tau; ``tau_norm_power`` here, to keep it apart from the other taus)
  swept over [0, 2] step 0.1 and chosen on a validation split. Validation ties go to the power
  that equals the head's plain inference, ``tau_norm_neutral(head)``: 0 for a linear (softmax)
  classifier, whose weights are used as they are, and 1 for the cosine heads (AAM, cosine,
  CausalNorm), whose plain inference normalises the class weights already (so power 0 is the
  most changed classifier there, not the plain one).
- LWS: logits s_i * f_i(x) of the frozen stage-1 classifier with a learnable per-class scale
  s (init 1), class-balanced sampling, 5 epochs (and at least ``min_steps`` steps), weight decay
  5e-4 on s (Kang et al.'s official code: SGD, momentum 0.9, weight decay 5e-4).
- ``fit_linear``: cRT's classifier and loop with any sampling power q (p_j ~ n_j^q) and an
  optional logit offset; ``ltspk.identify.methods.train_linear`` trains its classifiers with it.
- NCM: subtract the training mean, L2-normalise, class centroids; cosine to the centroids.
Embeddings are L2-normalised before cRT and tau-norm (speaker embeddings are scored by angle).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ltspk.data.samplers import ClassAwareSampler
from ltspk.evaluation.records import choose_on_validation
from ltspk.heads.methods import Method, Tunable, register

TAU_NORM = register(Method(
    "tau_norm", "stage2", "tau-normalisation: w_i / ||w_i||^p of the stage-1 classifier, p chosen on validation",
    Tunable("tau_norm_power", "tau_norm_powers", tuple(np.round(np.arange(0, 2.0001, 0.1), 2).tolist())))).tunable


def _t(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def l2n(x):
    return F.normalize(_t(x), dim=1)


def _epochs_for(n, epochs, batch_size, min_steps):
    return max(int(epochs), math.ceil(min_steps / max(1, math.ceil(n / batch_size))))


def _balanced_batches(labels, epochs, batch_size, seed, q=0.0):
    """(epoch, batch indices) over ``epochs`` passes of ``ClassAwareSampler(labels, q, seed)``:
    classes drawn with p_j ~ n_j^q (q = 0 class-balanced, q = 1 instance-balanced)."""
    sampler = ClassAwareSampler(labels, q=q, seed=seed)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order = np.fromiter(iter(sampler), dtype=np.int64, count=len(sampler))
        for a in range(0, len(order), batch_size):
            yield epoch, torch.from_numpy(order[a : a + batch_size])


def _fit_balanced(params, loss_of, y, epochs, lr, batch_size, weight_decay, seed, min_steps, q=0.0):
    """SGD (momentum 0.9, cosine decay to 0) over batches drawn with p_j ~ n_j^q (q = 0:
    class-balanced): the stage-2 loop cRT, LWS and ``fit_linear`` share. ``loss_of(batch_indices) -> loss``."""
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    epochs = _epochs_for(len(y), epochs, batch_size, min_steps)
    steps = epochs * math.ceil(len(y) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    for _, idx in _balanced_batches(np.asarray(y), epochs, batch_size, seed, q):
        loss = loss_of(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def fit_linear(x, y, n_classes, q=0.0, logit_offset=None, epochs=10, lr=0.2, batch_size=256, weight_decay=5e-4,
               seed=0, min_steps=500):
    """A fresh linear classifier (W [C, D], b [C], torch tensors) on L2-normalised embeddings,
    trained with classes drawn with p_j ~ n_j^q (q = 0: class-balanced, cRT; q = 1: instance
    sampling), cross-entropy on logits + ``logit_offset`` (e.g. tau * log prior: the logit-adjusted
    loss; None: none). Its initialisation (nn.Linear's range) draws from its own generator
    (``seed``), never from torch's global one."""
    x, y = l2n(x), torch.as_tensor(np.asarray(y), dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(x.shape[1])  # nn.Linear's default initialisation range
    w = torch.empty(n_classes, x.shape[1]).uniform_(-bound, bound, generator=gen).requires_grad_()
    b = torch.empty(n_classes).uniform_(-bound, bound, generator=gen).requires_grad_()
    offset = None if logit_offset is None else torch.as_tensor(logit_offset, dtype=torch.float32)

    def loss_of(idx):
        z = F.linear(x[idx], w, b)
        return F.cross_entropy(z if offset is None else z + offset, y[idx])

    _fit_balanced([w, b], loss_of, y.numpy(), epochs, lr, batch_size, weight_decay, seed, min_steps, q)
    return w.detach(), b.detach()


def crt(x, y, n_classes, epochs=10, lr=0.2, batch_size=256, weight_decay=5e-4, seed=0, min_steps=500):
    """Train a fresh linear classifier on frozen embeddings with class-balanced sampling
    (``fit_linear`` with q = 0). Returns a function: embeddings -> logits. Its initialisation
    draws from its own generator (``seed``), never from torch's global one."""
    w, b = fit_linear(x, y, n_classes, q=0.0, epochs=epochs, lr=lr, batch_size=batch_size,
                      weight_decay=weight_decay, seed=seed, min_steps=min_steps)
    return lambda e: F.linear(l2n(e), w, b)


def tau_norm_neutral(head):
    """The tau-norm power that equals ``head``'s plain inference (``tau_norm_neutral`` of its class:
    1 for heads whose plain inference normalises the class weights, 0 otherwise): validation ties
    go to it, the least change to the classifier."""
    return float(getattr(head, "tau_norm_neutral", TAU_NORM.neutral))


def tau_normalized_logits(weight, x, power):
    """<x/||x||, w_i / ||w_i||^power>, bias dropped."""
    w = _t(weight)
    return l2n(x) @ (w / w.norm(dim=1, keepdim=True).clamp_min(1e-12).pow(power)).t()


def choose_power(weight, x_val, y_val, powers=None, neutral=TAU_NORM.neutral):
    """The power in [0, 2] (step 0.1) with the best validation top-1 accuracy, and every score;
    ties go to the power nearest ``neutral`` (the least change to the classifier:
    ``tau_norm_neutral(head)`` for a head's classifier, 0 for a linear one)."""
    powers = TAU_NORM.grid if powers is None else powers
    y_val = np.asarray(y_val)
    scores = {float(p): float((tau_normalized_logits(weight, x_val, p).argmax(1).numpy() == y_val).mean())
              for p in powers}
    return choose_on_validation(scores, neutral), scores


def lws(frozen_logits, y, epochs=5, lr=0.2, batch_size=256, seed=0, min_steps=500, weight_decay=5e-4):
    """Learn a per-class scale s on the frozen classifier's logits (SGD with ``weight_decay`` on s,
    5e-4 as Kang et al.'s code). Returns s (numpy)."""
    z, y = _t(frozen_logits), torch.as_tensor(np.asarray(y), dtype=torch.long)
    s = torch.ones(z.shape[1], requires_grad=True)
    _fit_balanced([s], lambda idx: F.cross_entropy(z[idx] * s, y[idx]), y.numpy(), epochs, lr, batch_size,
                  weight_decay, seed, min_steps)
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


register(Method("cRT", "stage2", "classifier re-training with class-balanced sampling", options_key="crt_options",
                options_of=crt, data_args=("x", "y", "n_classes")))
register(Method("LWS", "stage2", "learnable per-class weight scaling of the frozen classifier", options_key="lws_options",
                options_of=lws, data_args=("frozen_logits", "y")))
register(Method("NCM", "stage2", "nearest class mean on normalised embeddings"))
