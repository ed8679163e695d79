"""CausalNorm multi-head classifier, De-confound training and TDE inference.

Tang, Huang, Zhang, NeurIPS 2020. W [C, D] without bias; D split into K heads:
    y_i = (scale / K) * sum_k < x_k / ||x_k|| , w_ik / (||w_ik|| + gamma) >
Training keeps a moving-average feature xbar <- mu * xbar + mean_batch(x) (detached raw
embedding, before the classifier; averaged over DDP ranks). TDE inference removes the
per-head projection on its direction d_k = xbar_k / ||xbar_k||:
    y_i^TDE = (scale / K) * sum_k < x_k/||x_k|| - alpha * cos_k * d_k , w_ik / (||w_ik|| + gamma) >
with cos_k = < x_k/||x_k|| , d_k >. alpha is set at inference time, without retraining.

Options for the paper's premises (issue: is there a head-class direction to remove?):
- ``mu="lr_tied"``: mu = 1 - 0.1 * min(50 * lr, 1), set from the learning rate of each epoch
  (the official ImageNet-LT/Places-LT runs); a float keeps mu fixed (0.9 in the paper's CIFAR runs).
- ``feature``: what CausalNorm normalises and averages. ``"embedding"`` (default) is the
  speaker embedding itself; ``"relu"`` is a non-negative feature ReLU(P x) of a learned
  projection P [feature_dim, D], as the paper's pooled post-ReLU ResNeXt feature is non-negative,
  so its running mean has a strong direction. Verification always uses the embedding x.
"""

import torch
import torch.distributed as dist
from torch import nn

from ltspk.heads.base import Head, checked_number, init_weight, normalize_rows
from ltspk.heads.methods import Method, Tunable, register

TDE = register(Method("tde", "inference", "TDE: remove alpha x the moving-average direction from the logits",
                      Tunable("tde_alpha", "tde_alphas", (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)))).tunable
FEATURES = ("embedding", "relu")
TDE_EMBEDDINGS = register(Method("tde_embeddings", "embedding", "TDE-debiased embeddings for verification",
                                 Tunable("tde_alpha", "tde_embedding_alphas", (0.5, 1.0)))).tunable


class CausalNormHead(Head):
    # plain inference normalises the class weights (per head, with gamma): tau-norm's power 1 is the
    # nearest to it (equal for one head and gamma 0; close otherwise), power 0 the most changed
    tau_norm_neutral = 1.0

    def __init__(self, in_dim, n_classes, num_heads=2, scale=16.0, gamma=1 / 32, mu=0.9, alpha=3.0, la_tau=0.0,
                 feature="embedding", feature_dim=None):
        super().__init__(in_dim, n_classes, la_tau)
        if feature not in FEATURES:
            raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
        self.feature = feature
        self.feature_dim = int(feature_dim or in_dim) if feature == "relu" else self.in_dim
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"num_heads must be a whole number >= 1, got {num_heads!r}")
        if self.feature_dim % num_heads:
            raise ValueError(f"feature size {self.feature_dim} is not divisible into {num_heads} heads")
        self.num_heads = int(num_heads)
        self.scale = checked_number("scale", scale, above=0.0)
        self.gamma = checked_number("gamma", gamma, minimum=0.0)
        self.mu_schedule = mu if mu == "lr_tied" else None
        if self.mu_schedule is None:
            if isinstance(mu, str):
                raise ValueError(f"mu must be a number in [0, 1) or 'lr_tied', got {mu!r}")
            checked_number("mu", mu, minimum=0.0, below=1.0)
        self.mu = 0.9 if self.mu_schedule else float(mu)
        self.alpha = checked_number("alpha", alpha)
        self.projection = nn.Linear(in_dim, self.feature_dim) if feature == "relu" else None
        self.weight = init_weight(n_classes, self.feature_dim)
        self.register_buffer("embed_mean", torch.zeros(self.feature_dim))

    def features(self, x):
        """What CausalNorm sees: the embedding, or ReLU(P x)."""
        return x if self.projection is None else torch.relu(self.projection(x))

    def set_learning_rate(self, lr):
        if self.mu_schedule == "lr_tied":
            self.mu = lr_tied_mu(lr)

    def _split(self, t):
        return t.reshape(*t.shape[:-1], self.num_heads, self.feature_dim // self.num_heads)

    def normed_weight(self):
        w = self._split(self.weight)
        return w / (w.norm(dim=-1, keepdim=True) + self.gamma)

    def _score(self, nx):
        return (self.scale / self.num_heads) * torch.einsum("...kd,ckd->...c", nx, self.normed_weight())

    def logits(self, x):
        return self._score(normalize_rows(self._split(self.features(x))))

    @torch.no_grad()
    def update_moving_average(self, x):
        batch_mean = x.detach().float().mean(0)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch_mean)
            batch_mean /= dist.get_world_size()
        self.embed_mean.mul_(self.mu).add_(batch_mean)

    def margin_logits(self, x, labels):
        f = self.features(x)
        if self.training:
            self.update_moving_average(f)
        return self._score(normalize_rows(self._split(f)))

    def direction(self):
        """Per-head unit direction d_k of the moving-average feature, [K, D/K]."""
        if not torch.any(self.embed_mean):
            raise RuntimeError("TDE needs the moving-average feature, which is still zero: train first "
                               "(or restore a checkpoint that holds it)")
        return normalize_rows(self._split(self.embed_mean))

    def debias(self, f, alpha=None):
        """f_k/||f_k|| - alpha * cos_k * d_k per head, [B, K, D/K], for a feature f."""
        alpha = self.alpha if alpha is None else float(alpha)
        nx, d = normalize_rows(self._split(f)), self.direction()
        cos = (nx * d).sum(-1, keepdim=True)
        return nx - alpha * cos * d

    def tde_logits(self, x, alpha=None):
        return self._score(self.debias(self.features(x), alpha))

    def inference_families(self):
        return {**super().inference_families(), "tde": TDE}

    def embedding_variants(self):
        # debiasing embeddings needs the direction in embedding space
        return {"tde_embeddings": TDE_EMBEDDINGS} if self.projection is None else {}

    def classifier_input(self, x):
        return self.features(x)

    def transform_embeddings(self, family, x, **params):
        if family != "tde_embeddings":
            return super().transform_embeddings(family, x, **params)
        return self.debias(x, params.get("tde_alpha")).reshape(x.shape[0], -1)

    def inference_logits(self, x, family="plain", **params):
        if family == "tde":
            return self.tde_logits(x, params.get("tde_alpha"))
        return super().inference_logits(x, family, **params)

    def cos_to_direction(self, x):
        """cos_k(x, d_k) averaged over the K heads, one value per row of x: [B]."""
        nx, d = normalize_rows(self._split(self.features(x))), self.direction()
        return (nx * d).sum(-1).mean(-1)

    def diagnostics(self, x):
        return {"cos_to_direction": self.cos_to_direction(x)}

    def suggested_settings(self, diagnostic_means):
        mean_cos = diagnostic_means.get("cos_to_direction")
        return {} if mean_cos is None else {"tde_alpha": alpha_rule(mean_cos)}

    def info(self):
        return {**super().info(), "feature": self.feature, "feature_dim": self.feature_dim,
                "mu": self.mu_schedule or self.mu}


def lr_tied_mu(lr):
    """mu = 1 - 0.1 * min(50 * lr, 1) (Tang et al.'s ImageNet-LT/Places-LT runs)."""
    return 1.0 - 0.1 * min(50.0 * float(lr), 1.0)


def alpha_rule(mean_cos):
    """alpha without validation: alpha * mean cos = 1 (None when mean cos <= 0). A rule of thumb
    from the README of the authors' repository (KaihuaTang/Long-Tailed-Recognition.pytorch), not
    from the NeurIPS 2020 paper, which sets alpha on a validation set."""
    return 1.0 / mean_cos if mean_cos > 0 else None
