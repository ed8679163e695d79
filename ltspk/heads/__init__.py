"""Classifier heads that replace AAM-softmax, all with one interface (see base.Head)."""

from ltspk.heads.aam import AAMHead
from ltspk.heads.base import Head, log_priors
from ltspk.heads.causal_norm import CausalNormHead
from ltspk.heads.cosine import CosineHead
from ltspk.heads.softmax import SoftmaxHead

HEADS = {"softmax": SoftmaxHead, "cosine": CosineHead, "aam": AAMHead, "causal_norm": CausalNormHead}


def build_head(kind, in_dim, n_classes, **kwargs):
    try:
        cls = HEADS[kind]
    except KeyError:
        raise ValueError(f"unknown head {kind!r}; choose one of {sorted(HEADS)}") from None
    return cls(in_dim, n_classes, **kwargs)


__all__ = ["AAMHead", "CausalNormHead", "CosineHead", "Head", "SoftmaxHead", "HEADS", "build_head", "log_priors"]
