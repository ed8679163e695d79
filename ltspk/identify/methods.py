"""The identification methods, fitted on the enrolled embeddings centred on their mean, each setting
chosen on validation accuracy (ties: the least adjustment), each stored as a ``Scorer``
(logits = l2n(x - mu) W^T + b): ``linear``, ``NCM``, ``posthoc_la``, ``la_loss``, ``cRT``, ``tau_norm``
and ``LWS`` (``ltspk.identify.settings.FAMILIES``)."""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ltspk.evaluation.records import choose_on_validation
from ltspk.heads.base import POSTHOC_LA, log_priors
from ltspk.heads.methods import Method, Tunable, register
from ltspk.longtail.decoupled import TAU_NORM, fit_linear, lws, ncm_centroids, tau_normalized_logits

LA_LOSS = register(Method("la_loss", "enrolment", "logit-adjusted loss of the enrolment classifier, tau chosen on validation",
                          Tunable("la_tau", "la_taus", (0.0, 0.5, 1.0, 1.5, 2.0)))).tunable


@dataclass
class Scorer:
    """logits = l2n(x - mu) W^T + b (mu: the enrolment mean, for every method)."""

    mu: np.ndarray
    W: np.ndarray
    b: np.ndarray

    def logits(self, x):
        x = torch.as_tensor(np.asarray(x, np.float32)) - torch.as_tensor(self.mu)
        return (F.normalize(x, dim=1) @ torch.as_tensor(self.W).t() + torch.as_tensor(self.b)).numpy()


def train_linear(x, y, n_classes, q=1.0, la_tau=0.0, log_prior=None, epochs=10, lr=0.2, batch_size=256,
                 weight_decay=5e-4, seed=0, min_steps=500):
    """Softmax regression on L2-normalised embeddings, classes drawn with p_j ~ n_j^q (q = 1:
    instance sampling, q = 0: class-balanced = cRT, identical to ``ltspk.longtail.decoupled.crt``),
    optionally with the logit-adjusted loss (logits + la_tau * log prior). Returns (W, b) as numpy.
    The training loop is ``ltspk.longtail.decoupled.fit_linear``'s."""
    offset = la_tau * torch.as_tensor(log_prior, dtype=torch.float32) if la_tau else None
    w, b = fit_linear(x, y, n_classes, q=q, logit_offset=offset, epochs=epochs, lr=lr, batch_size=batch_size,
                      weight_decay=weight_decay, seed=seed, min_steps=min_steps)
    return w.numpy(), b.numpy()


def ncm_scorer(x, y, n_classes):
    """``ltspk.longtail.decoupled.ncm`` as a Scorer: cosine to the normalised class means of centred,
    L2-normalised embeddings."""
    mean, cent = ncm_centroids(x, y, n_classes)
    return Scorer(mean[0].numpy(), cent.numpy(), np.zeros(n_classes, np.float32))


# The linear classifiers here are trained to convergence: a pretrained embedder's embeddings are not
# centred (resemblyzer's lie in a narrow cone), and with ltspk.longtail.decoupled's stage-2 setting (lr 0.2,
# 500 steps) on raw embeddings the instance-sampled classifier did not fit its own enrolment data
# (0% training accuracy on few-shot speakers on DSPSpeech-20), which is an optimisation failure, not
# the long tail. Embeddings are centred on the enrolment mean (as NCM centres them) and trained with
# lr 1.0 for at least 2,000 steps: 5,000 or 20,000 steps give the same classifiers' accuracy.
ENROL_LINEAR = {"lr": 1.0, "min_steps": 2000}


def fit_methods(xe, ye, xv, yv, counts, settings):
    """{family: (Scorer, chosen params, validation accuracy per setting)}. Every classifier scores
    l2n(x - mu) with mu the enrolment mean (``ncm_scorer``'s)."""
    n = len(counts)
    mu = np.asarray(xe, np.float32).mean(0)
    xe_c, xv_c = np.asarray(xe, np.float32) - mu, np.asarray(xv, np.float32) - mu
    log_prior = log_priors(counts).numpy()
    lin_opts = {"seed": settings.seed, **ENROL_LINEAR, **settings.linear_options}

    def acc(logits):
        return float((np.asarray(logits).argmax(1) == yv).mean())

    def sweep(tunable, grid, logits_of):
        scores = {float(v): acc(logits_of(float(v))) for v in grid}
        return choose_on_validation(scores, tunable.neutral), scores

    out = {}
    W, b = train_linear(xe_c, ye, n, q=1.0, **lin_opts)
    linear = Scorer(mu, W, b)
    out["linear"] = (linear, {}, {})
    out["NCM"] = (ncm_scorer(xe, ye, n), {}, {})
    z_v = linear.logits(xv)
    tau, s = sweep(POSTHOC_LA, POSTHOC_LA.grid, lambda t: z_v - t * log_prior)
    out["posthoc_la"] = (Scorer(mu, W, (b - tau * log_prior).astype(np.float32)), {POSTHOC_LA.param: tau}, s)
    fits = {0.0: (W, b)}
    for t in LA_LOSS.grid:
        if t:
            fits[float(t)] = train_linear(xe_c, ye, n, q=1.0, la_tau=t, log_prior=log_prior, **lin_opts)
    tau, s = sweep(LA_LOSS, LA_LOSS.grid, lambda t: Scorer(mu, *fits[t]).logits(xv))
    out["la_loss"] = (Scorer(mu, *fits[tau]), {LA_LOSS.param: tau}, s)
    out["cRT"] = (Scorer(mu, *train_linear(xe_c, ye, n, q=0.0, **lin_opts)), {}, {})
    p, s = sweep(TAU_NORM, TAU_NORM.grid, lambda p: tau_normalized_logits(W, xv_c, p).numpy())
    wn = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12) ** p
    out["tau_norm"] = (Scorer(mu, wn.astype(np.float32), np.zeros(n, np.float32)), {TAU_NORM.param: p}, s)
    scale = lws(linear.logits(xe), ye, seed=settings.seed, **settings.lws_options)
    out["LWS"] = (Scorer(mu, (W * scale[:, None]).astype(np.float32), (b * scale).astype(np.float32)), {}, {})
    return out
