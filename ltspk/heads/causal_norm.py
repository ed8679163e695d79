"""CausalNorm multi-head classifier, De-confound training and TDE inference.

Tang, Huang, Zhang, NeurIPS 2020. W [C, D] without bias; D split into K heads:
    y_i = (scale / K) * sum_k < x_k / ||x_k|| , w_ik / (||w_ik|| + gamma) >
Training keeps a moving-average feature xbar <- mu * xbar + mean_batch(x) (detached raw
embedding, before the classifier; averaged over DDP ranks). TDE inference removes the
per-head projection on its direction d_k = xbar_k / ||xbar_k||:
    y_i^TDE = (scale / K) * sum_k < x_k/||x_k|| - alpha * cos_k * d_k , w_ik / (||w_ik|| + gamma) >
with cos_k = < x_k/||x_k|| , d_k >. alpha is set at inference time, without retraining.
"""

import torch
import torch.distributed as dist

from ltspk.heads.base import Head, Tunable, init_weight, normalize_rows

TDE = Tunable("tde_alpha", "tde_alphas", (0.0, 0.5, 1.0, 1.5, 2.0, 3.0))
TDE_EMBEDDINGS = Tunable("tde_alpha", "tde_embedding_alphas", (0.5, 1.0))


class CausalNormHead(Head):
    def __init__(self, in_dim, n_classes, num_heads=2, scale=16.0, gamma=1 / 32, mu=0.9, alpha=3.0, la_tau=0.0):
        super().__init__(in_dim, n_classes, la_tau)
        if in_dim % num_heads:
            raise ValueError(f"embedding size {in_dim} is not divisible into {num_heads} heads")
        self.num_heads, self.scale, self.gamma = int(num_heads), float(scale), float(gamma)
        self.mu, self.alpha = float(mu), float(alpha)
        self.weight = init_weight(n_classes, in_dim)
        self.register_buffer("embed_mean", torch.zeros(in_dim))

    def _split(self, t):
        return t.reshape(*t.shape[:-1], self.num_heads, self.in_dim // self.num_heads)

    def normed_weight(self):
        w = self._split(self.weight)
        return w / (w.norm(dim=-1, keepdim=True) + self.gamma)

    def _score(self, nx):
        return (self.scale / self.num_heads) * torch.einsum("...kd,ckd->...c", nx, self.normed_weight())

    def logits(self, x):
        return self._score(normalize_rows(self._split(x)))

    @torch.no_grad()
    def update_moving_average(self, x):
        batch_mean = x.detach().float().mean(0)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch_mean)
            batch_mean /= dist.get_world_size()
        self.embed_mean.mul_(self.mu).add_(batch_mean)

    def margin_logits(self, x, labels):
        if self.training:
            self.update_moving_average(x)
        return self.logits(x)

    def direction(self):
        """Per-head unit direction d_k of the moving-average feature, [K, D/K]."""
        if not torch.any(self.embed_mean):
            raise RuntimeError("TDE needs the moving-average feature, which is still zero: train first "
                               "(or restore a checkpoint that holds it)")
        return normalize_rows(self._split(self.embed_mean))

    def debias(self, x, alpha=None):
        """x_k/||x_k|| - alpha * cos_k * d_k per head, [B, K, D/K]."""
        alpha = self.alpha if alpha is None else float(alpha)
        nx, d = normalize_rows(self._split(x)), self.direction()
        cos = (nx * d).sum(-1, keepdim=True)
        return nx - alpha * cos * d

    def tde_logits(self, x, alpha=None):
        return self._score(self.debias(x, alpha))

    def inference_families(self):
        return {**super().inference_families(), "tde": TDE}

    def embedding_variants(self):
        return {"tde_embeddings": TDE_EMBEDDINGS}

    def transform_embeddings(self, family, x, **params):
        if family != "tde_embeddings":
            return super().transform_embeddings(family, x, **params)
        return self.debias(x, params.get("tde_alpha")).reshape(x.shape[0], -1)

    def inference_logits(self, x, family="plain", **params):
        if family == "tde":
            return self.tde_logits(x, params.get("tde_alpha"))
        return super().inference_logits(x, family, **params)

    def mean_alpha_cos(self, x, alpha=1.0):
        """Mean of alpha * cos_k over data and heads: the paper picks alpha with this ~ 1."""
        nx, d = normalize_rows(self._split(x)), self.direction()
        return float(alpha * (nx * d).sum(-1).mean())
