"""Class-aware samplers: instance-, class-balanced, square-root, progressively balanced.

Kang et al. (ICLR 2020): class j is drawn with p_j = n_j^q / sum_i n_i^q, then an
utterance uniformly within the class. q = 1 instance-balanced, q = 0 class-balanced,
q = 1/2 square-root. Progressively balanced: p_j(t) = (1 - t/T) p_j^IB + (t/T) p_j^CB
for epoch t of T.

Each sampler is deterministic for a given (seed, epoch), so under DDP SpeechBrain's
``DistributedSamplerWrapper`` (applied by ``Brain.make_dataloader``) gives every rank a
disjoint share of the same draw, all of the same length. Call ``set_epoch`` each epoch
(Brain does).
"""

import numpy as np
from torch.utils.data import Sampler


def class_probabilities(counts, q):
    """p_j proportional to n_j^q over classes with n_j > 0."""
    counts = np.asarray(counts, dtype=np.float64)
    if (counts < 0).any():
        raise ValueError("class counts must be non-negative")
    weights = np.where(counts > 0, np.power(counts, q, where=counts > 0, out=np.zeros_like(counts)), 0.0)
    total = weights.sum()
    if total <= 0:
        raise ValueError("no class has any utterance")
    return weights / total


def progressive_probabilities(counts, epoch, total_epochs):
    """(1 - t/T) p^IB + (t/T) p^CB with t = epoch (0-based) clipped to [0, T]."""
    t = min(max(epoch, 0), total_epochs) / max(total_epochs, 1)
    return (1 - t) * class_probabilities(counts, 1.0) + t * class_probabilities(counts, 0.0)


class ClassAwareSampler(Sampler):
    """Draw ``num_samples`` indices per epoch: a class by its probability, then an
    utterance of that class uniformly (with replacement across the epoch). With q = 1
    (instance-balanced) it is a plain shuffle: every utterance once per pass.

    Arguments
    ---------
    labels : sequence of int class indices, one per dataset item.
    q : float exponent (1 instance-balanced, 0 class-balanced, 0.5 square-root);
        ignored when ``progressive_epochs`` is set.
    progressive_epochs : T for progressively balanced sampling, else None.
    num_samples : indices per epoch (default: dataset size).
    seed : base seed; the epoch is added so every epoch differs and every rank agrees.
    """

    def __init__(self, labels, q=1.0, progressive_epochs=None, num_samples=None, seed=0):
        labels = np.asarray(labels, dtype=np.int64)
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError("labels must be a non-empty 1-D sequence of class indices")
        if labels.min() < 0:
            raise ValueError("class indices must be >= 0")
        self.labels = labels
        self.q = float(q)
        self.progressive_epochs = progressive_epochs
        self.num_samples = int(num_samples or labels.size)
        self.seed = int(seed)
        self.epoch = 0
        self.counts = np.bincount(labels)
        order = np.argsort(labels, kind="stable")
        self._members = order
        self._offsets = np.concatenate([[0], np.cumsum(self.counts)])

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def probabilities(self, epoch=None):
        epoch = self.epoch if epoch is None else epoch
        if self.progressive_epochs:
            return progressive_probabilities(self.counts, epoch, self.progressive_epochs)
        return class_probabilities(self.counts, self.q)

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.q == 1.0 and not self.progressive_epochs:
            # instance-balanced: a plain shuffle, each utterance once per pass
            n = self.labels.size
            reps = -(-self.num_samples // n)
            order = np.concatenate([rng.permutation(n) for _ in range(reps)])[: self.num_samples]
            return iter(order.tolist())
        probs = self.probabilities()
        classes = rng.choice(len(probs), size=self.num_samples, p=probs)
        within = rng.random(self.num_samples)
        pos = self._offsets[classes] + (within * self.counts[classes]).astype(np.int64)
        return iter(self._members[pos].tolist())


SAMPLING_POWERS = {"instance": 1.0, "class": 0.0, "sqrt": 0.5}  # p_j ~ n_j^q
SAMPLERS = (*SAMPLING_POWERS, "progressive")


def make_sampler(kind, labels, seed=0, num_samples=None, total_epochs=None):
    """Sampler by name: 'instance' | 'class' | 'sqrt' | 'progressive' (None -> shuffle)."""
    if kind in SAMPLING_POWERS:
        return ClassAwareSampler(labels, q=SAMPLING_POWERS[kind], num_samples=num_samples, seed=seed)
    if kind == "progressive":
        if not total_epochs:
            raise ValueError("progressive sampling needs total_epochs")
        return ClassAwareSampler(labels, progressive_epochs=total_epochs, num_samples=num_samples, seed=seed)
    raise ValueError(f"unknown sampler {kind!r}; choose instance, class, sqrt or progressive")
