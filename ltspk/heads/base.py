"""The one interface every classifier head follows.

- ``forward(x, labels)`` in training: the logits the loss sees (margins, logit-adjusted
  loss offsets, and any training-only state update such as CausalNorm's moving average).
- ``inference_logits(x, family, **params)``: logits for speaker ID: ``"plain"``,
  ``"posthoc_la"`` (f(x) - posthoc_tau * log pi, Menon et al.), or a family a head adds
  (CausalNorm: ``"tde"``). ``inference_families()`` lists each tunable family with its
  parameter and default grid, and ``embedding_variants()`` the embedding transforms a head
  offers for verification; evaluation and stage 2 ask the head, never its class.
- ``classifier_weight()``: the class weights, applied to ``classifier_input(x)`` (for tau-normalisation);
  ``tau_norm_neutral``: the tau-norm power whose logits rank classes as the head's plain inference
  does (0 where the weights are used as they are; 1 for heads that normalise them), where
  validation ties of the power go (``ltspk.longtail.decoupled.tau_norm_neutral``).
- Everything inference needs (class log-priors, CausalNorm's direction) is a registered
  buffer, so it is in ``state_dict`` and therefore in every checkpoint.
"""

import math

import torch
from torch import nn

from ltspk.heads.methods import Method, Tunable, register

PRIOR_EPS = 1e-12  # guard for log(0), as in the logit-adjustment reference code


def checked_number(name, value, minimum=None, above=None, below=None):
    """``value`` as a float, or ``ValueError`` naming the head argument: not a number, below
    ``minimum``, not above ``above``, or not below ``below``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if (minimum is not None and value < minimum) or (above is not None and value <= above) or \
            (below is not None and value >= below):
        bounds = [f">= {minimum:g}" if minimum is not None else "", f"> {above:g}" if above is not None else "",
                  f"< {below:g}" if below is not None else ""]
        raise ValueError(f"{name} must be {' and '.join(b for b in bounds if b)}, got {value:g}")
    return value


def log_priors(counts):
    """log(n_j / N), with zero-count classes guarded (log(1e-12)), never -inf."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() == 0 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("class counts must be a non-empty vector of non-negative numbers with a positive sum")
    return torch.log(counts / counts.sum() + PRIOR_EPS).float()


POSTHOC_LA = register(Method(
    "posthoc_la", "inference", "post-hoc logit adjustment: f(x) - tau log pi (Menon et al., ICLR 2021)",
    Tunable("posthoc_tau", "posthoc_la_taus", (0.0, 0.5, 1.0, 1.5, 2.0)))).tunable


class Head(nn.Module):
    """Base head: a classifier over ``n_classes`` speakers on ``in_dim``-dim embeddings.

    ``la_tau`` > 0 turns the training loss into the logit-adjusted loss: the loss sees
    f_y(x) + la_tau * log(pi_y); predictions use plain f(x).
    """

    # the tau-norm power equal to plain inference: <x/||x||, w_i> ranks classes as W x does (no bias)
    tau_norm_neutral = 0.0

    def __init__(self, in_dim, n_classes, la_tau=0.0):
        super().__init__()
        self.in_dim, self.n_classes = int(in_dim), int(n_classes)
        self.la_tau = checked_number("la_tau", la_tau, minimum=0.0)
        self.register_buffer("log_prior", torch.zeros(self.n_classes))
        self.register_buffer("has_prior", torch.tensor(False))
        self._prior_ready = False  # a Python mirror of has_prior: no device sync per training step

    def set_priors(self, counts):
        if len(counts) != self.n_classes:
            raise ValueError(f"{len(counts)} class counts for a head of {self.n_classes} classes")
        self.log_prior.copy_(log_priors(counts))
        self.has_prior.fill_(True)
        self._prior_ready = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        flag = state_dict.get(prefix + "has_prior")
        if flag is not None:
            self._prior_ready = bool(flag)

    def _require_prior(self, what):
        if not self._prior_ready:
            raise RuntimeError(f"{what} needs class priors: call set_priors(training counts) first")

    # subclasses: scores without margins, and the margin version for training
    def logits(self, x):
        raise NotImplementedError

    def margin_logits(self, x, labels):
        return self.logits(x)

    def forward(self, x, labels=None):
        if labels is None:
            return self.logits(x)
        out = self.margin_logits(x, labels)
        if self.la_tau:
            self._require_prior("the logit-adjusted loss")
            out = out + self.la_tau * self.log_prior
        return out

    def inference_families(self):
        """Tunable inference families of this head: family -> ``Tunable``."""
        return {"posthoc_la": POSTHOC_LA}

    def embedding_variants(self):
        """Embedding transforms for verification: family -> ``Tunable`` (none by default)."""
        return {}

    def transform_embeddings(self, family, x, **params):
        raise ValueError(f"{type(self).__name__} has no embedding variant {family!r}")

    def classifier_weight(self):
        """The [n_classes, d] class weights, applied to ``classifier_input(x)``."""
        return self.weight

    def classifier_input(self, x):
        """The feature the class weights apply to (the embedding itself by default)."""
        return x

    def set_learning_rate(self, lr):
        """Called with the optimiser's learning rate at the start of every training epoch."""

    def diagnostics(self, x):
        """Per-row figures a head reports about embeddings x ({name: [B] tensor}); none by default."""
        return {}

    def suggested_settings(self, diagnostic_means):
        """Settings a paper's rule of thumb derives from the diagnostics' overall means
        ({param: value}), recorded beside the settings chosen on validation; none by default."""
        return {}

    def info(self):
        """Settings of the head recorded with the results."""
        return {"head": type(self).__name__, "la_tau": self.la_tau}

    def inference_logits(self, x, family="plain", **params):
        if family == "plain":
            return self.logits(x)
        if family == "posthoc_la":
            self._require_prior("post-hoc logit adjustment")
            return self.logits(x) - float(params.get("posthoc_tau", 1.0)) * self.log_prior
        raise ValueError(f"{type(self).__name__} has no inference family {family!r}; "
                         f"use plain or {', '.join(self.inference_families())}")


def normalize_rows(w, eps=1e-12):
    return w / w.norm(dim=-1, keepdim=True).clamp_min(eps)


def init_weight(n_classes, in_dim):
    w = torch.empty(n_classes, in_dim)
    nn.init.uniform_(w, -1 / math.sqrt(in_dim), 1 / math.sqrt(in_dim))
    return nn.Parameter(w)
