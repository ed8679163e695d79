"""Additive angular margin (AAM / ArcFace) head: s * cos(theta_j + m * [j = y]).

Margin 0.2 and scale 30 by default, as SpeechBrain's VoxCeleb recipe. Like SpeechBrain's
``AdditiveAngularMargin`` (easy_margin off), where theta + m would pass pi the target
logit continues as cos(theta) - m * sin(m) so it stays monotonic.
"""

import math

import torch
import torch.nn.functional as F

from ltspk.heads.base import checked_number
from ltspk.heads.cosine import CosineHead


class AAMHead(CosineHead):
    def __init__(self, in_dim, n_classes, margin=0.2, scale=30.0, la_tau=0.0):
        super().__init__(in_dim, n_classes, scale, la_tau)
        self.margin = checked_number("margin", margin, minimum=0.0, below=math.pi / 2)

    def margin_logits(self, x, labels):
        cos = self.cosine(x)
        m = self.margin
        sin = torch.sqrt((1.0 - cos * cos).clamp(0.0, 1.0))
        phi = cos * math.cos(m) - sin * math.sin(m)
        phi = torch.where(cos > math.cos(math.pi - m), phi, cos - math.sin(math.pi - m) * m)
        one_hot = F.one_hot(labels.long(), self.n_classes).to(cos.dtype)
        return self.scale * (one_hot * phi + (1.0 - one_hot) * cos)


class MarginScheduler:
    """WeSpeaker's AAM margin schedule (``MarginScheduler`` in ``wespeaker/utils/schedulers.py``),
    per optimiser step, as a pure function of the step, so that nothing needs checkpointing.

    With E steps an epoch, S = (increase_start_epoch - 1) E and F = (fix_start_epoch - 1) E,
    the margin of step i (0-based over the whole run; i = (epoch - 1) E + step in epoch - 1) is

        initial_margin                                       i < S
        initial + (final - initial) * r(x),  x = (i - S) / (F - S)     S <= i < F
        final_margin                                         i >= F

    with r(x) = 1 - exp(x * ln(1e-3 / (1 + 1e-6))) ~ 1 - 0.001^x for ``increase_type: exp``
    (WeSpeaker's constants) and r(x) = x for ``linear``. WeSpeaker's VoxCeleb ECAPA config:
    initial 0, final 0.2, increase_start_epoch 20, fix_start_epoch 40, exp.
    """

    def __init__(self, initial_margin=0.0, final_margin=0.2, increase_start_epoch=20, fix_start_epoch=40,
                 increase_type="exp"):
        if increase_type not in ("exp", "linear"):
            raise ValueError(f"increase_type must be exp or linear, got {increase_type!r}")
        if fix_start_epoch < increase_start_epoch:
            raise ValueError("fix_start_epoch must not come before increase_start_epoch")
        self.initial_margin, self.final_margin = float(initial_margin), float(final_margin)
        self.increase_start_epoch, self.fix_start_epoch = int(increase_start_epoch), int(fix_start_epoch)
        self.increase_type = increase_type

    def margin_at(self, step, steps_per_epoch):
        start = (self.increase_start_epoch - 1) * steps_per_epoch
        fix = (self.fix_start_epoch - 1) * steps_per_epoch
        if step >= fix:
            return self.final_margin
        if step < start:
            return self.initial_margin
        x = (step - start) / (fix - start)
        ratio = 1.0 - math.exp(x * math.log(1e-3 / (1.0 + 1e-6))) if self.increase_type == "exp" else x
        return self.initial_margin + (self.final_margin - self.initial_margin) * ratio
