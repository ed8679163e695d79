"""Classifier heads that replace AAM-softmax, all with one interface (see base.Head).

In hparams a head is named by its class (``classifier: !name:ltspk.heads.AAMHead``); evaluation
and stage 2 ask a head for its inference families and embedding variants, so a new head is a
new module here and nothing else.
"""

from ltspk.heads.aam import AAMHead
from ltspk.heads.base import Head, log_priors
from ltspk.heads.causal_norm import CausalNormHead
from ltspk.heads.cosine import CosineHead
from ltspk.heads.methods import Tunable
from ltspk.heads.softmax import SoftmaxHead

__all__ = ["AAMHead", "CausalNormHead", "CosineHead", "Head", "SoftmaxHead", "Tunable", "log_priors"]
