"""Losses on head logits: cross-entropy and focal loss (Lin et al., 2017)."""

import torch.nn.functional as F


def focal_loss(logits, targets, gamma=2.0):
    """mean over the batch of -(1 - p_t)^gamma * log p_t; gamma = 0 is cross-entropy."""
    logp = F.log_softmax(logits.float(), dim=-1).gather(1, targets.long().view(-1, 1)).squeeze(1)
    return (-(1.0 - logp.exp()).pow(gamma) * logp).mean()


def build_loss(kind="ce", gamma=2.0):
    if kind == "ce":
        return lambda logits, targets: F.cross_entropy(logits.float(), targets.long())
    if kind == "focal":
        return lambda logits, targets: focal_loss(logits, targets, gamma)
    raise ValueError(f"unknown loss {kind!r}; choose ce or focal")


__all__ = ["focal_loss", "build_loss"]
