"""Plain softmax head: a linear layer, logits W x + b."""

from torch import nn

from ltspk.heads.base import Head


class SoftmaxHead(Head):
    def __init__(self, in_dim, n_classes, bias=True, la_tau=0.0):
        super().__init__(in_dim, n_classes, la_tau)
        self.linear = nn.Linear(in_dim, n_classes, bias=bias)

    def classifier_weight(self):
        return self.linear.weight

    def logits(self, x):
        return self.linear(x)
