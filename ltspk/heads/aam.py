"""Additive angular margin (AAM / ArcFace) head: s * cos(theta_j + m * [j = y]).

Margin 0.2 and scale 30 by default, as SpeechBrain's VoxCeleb recipe. Like SpeechBrain's
``AdditiveAngularMargin`` (easy_margin off), where theta + m would pass pi the target
logit continues as cos(theta) - m * sin(m) so it stays monotonic.
"""

import math

import torch
import torch.nn.functional as F

from ltspk.heads.cosine import CosineHead


class AAMHead(CosineHead):
    def __init__(self, in_dim, n_classes, margin=0.2, scale=30.0, la_tau=0.0):
        super().__init__(in_dim, n_classes, scale, la_tau)
        self.margin = float(margin)

    def margin_logits(self, x, labels):
        cos = self.cosine(x)
        m = self.margin
        sin = torch.sqrt((1.0 - cos * cos).clamp(0.0, 1.0))
        phi = cos * math.cos(m) - sin * math.sin(m)
        phi = torch.where(cos > math.cos(math.pi - m), phi, cos - math.sin(math.pi - m) * m)
        one_hot = F.one_hot(labels.long(), self.n_classes).to(cos.dtype)
        return self.scale * (one_hot * phi + (1.0 - one_hot) * cos)
