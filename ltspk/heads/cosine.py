"""Cosine head: s * cos(x, w_j)."""

from ltspk.heads.base import Head, checked_number, init_weight, normalize_rows


class CosineHead(Head):
    # plain inference is s * cos(x, w_i): tau-norm with power 1, <x/||x||, w_i/||w_i||>, up to the scale s
    tau_norm_neutral = 1.0

    def __init__(self, in_dim, n_classes, scale=30.0, la_tau=0.0):
        super().__init__(in_dim, n_classes, la_tau)
        self.scale = checked_number("scale", scale, above=0.0)
        self.weight = init_weight(n_classes, in_dim)

    def cosine(self, x):
        return normalize_rows(x) @ normalize_rows(self.weight).t()

    def logits(self, x):
        return self.scale * self.cosine(x)
