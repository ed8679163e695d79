"""Long-tail tools: minimum counts, long-tail sub-sampling, speaker-ID hold-out, shot groups."""

import math
import random
from dataclasses import dataclass

import numpy as np

from ltspk.data.manifest import speaker_counts

SHOT_GROUPS = ("many", "medium", "few")


def group_by_speaker(utterances):
    groups = {}
    for u in utterances:
        groups.setdefault(u.spk_id, []).append(u)
    return groups


def filter_min_utterances(utterances, min_utts):
    """Drop speakers with fewer than ``min_utts`` utterances. Returns (kept, dropped speakers)."""
    counts = speaker_counts(utterances)
    dropped = sorted(s for s, n in counts.items() if n < min_utts)
    drop = set(dropped)
    return [u for u in utterances if u.spk_id not in drop], dropped


def longtail_targets(counts, imbalance_factor):
    """Exponential long-tail profile (as in long-tailed CIFAR) laid over natural counts.

    Speakers are ranked by natural count (descending, ties by ID). Rank i of C gets
    ``n_max * imbalance_factor ** (-i / (C - 1))`` utterances, rounded down, at least 1,
    and never more than it has.
    """
    if imbalance_factor < 1:
        raise ValueError(f"imbalance_factor must be >= 1, got {imbalance_factor}")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        return {}
    n_max, c = ranked[0][1], len(ranked)
    targets = {}
    for i, (spk, n) in enumerate(ranked):
        profile = n_max * imbalance_factor ** (-i / (c - 1)) if c > 1 else n_max
        targets[spk] = max(1, min(n, int(math.floor(profile + 1e-9))))
    return targets


def longtail_subsample(utterances, imbalance_factor, seed=0):
    """Keep, for each speaker, a seeded random subset of the size ``longtail_targets`` gives."""
    groups = group_by_speaker(utterances)
    targets = longtail_targets({s: len(v) for s, v in groups.items()}, imbalance_factor)
    rng = random.Random(seed)
    keep = set()
    for spk in sorted(groups):
        utts = sorted(groups[spk], key=lambda u: u.ID)
        keep.update(u.ID for u in rng.sample(utts, targets[spk]))
    return [u for u in utterances if u.ID in keep]


@dataclass
class HoldoutSplit:
    train: list
    test: list
    too_small: list  # speakers kept whole in training: too few utterances to hold out from


def speaker_id_split(utterances, per_speaker, min_train=1, seed=0):
    """Hold out ``per_speaker`` utterances of every speaker for a balanced speaker-ID test.

    A speaker needs ``per_speaker + min_train`` utterances; smaller ones stay whole in
    training and are listed in ``too_small`` (reported, never dropped silently).
    """
    rng = random.Random(seed)
    test_ids, too_small = set(), []
    for spk, utts in sorted(group_by_speaker(utterances).items()):
        if len(utts) < per_speaker + min_train:
            too_small.append(spk)
            continue
        test_ids.update(u.ID for u in rng.sample(sorted(utts, key=lambda u: u.ID), per_speaker))
    train = [u for u in utterances if u.ID not in test_ids]
    test = [u for u in utterances if u.ID in test_ids]
    return HoldoutSplit(train, test, too_small)


@dataclass(frozen=True)
class ShotThresholds:
    """many: n > many_above; few: n < few_below; medium: the rest (inclusive bounds)."""

    many_above: float = 100
    few_below: float = 20

    def group(self, n):
        if n > self.many_above:
            return "many"
        if n < self.few_below:
            return "few"
        return "medium"

    @classmethod
    def from_quantiles(cls, counts, low=1 / 3, high=2 / 3):
        """Thresholds at quantiles of the per-speaker counts (for corpora where the
        image thresholds do not fit, e.g. VoxCeleb2 with 45..1000 utterances a speaker)."""
        values = np.asarray(list(counts.values()), dtype=float)
        if values.size == 0:
            raise ValueError("no speakers to compute quantile thresholds from")
        return cls(many_above=float(np.quantile(values, high)), few_below=float(np.quantile(values, low)))

    def as_dict(self):
        return {
            "many": f"n > {self.many_above:g}",
            "medium": f"{self.few_below:g} <= n <= {self.many_above:g}",
            "few": f"n < {self.few_below:g}",
            "many_above": self.many_above,
            "few_below": self.few_below,
        }


def shot_groups(counts, thresholds):
    """Map speaker -> 'many' | 'medium' | 'few' from its training count."""
    return {spk: thresholds.group(n) for spk, n in counts.items()}


def imbalance_factor(counts):
    values = list(counts.values())
    return max(values) / min(values) if values else float("nan")
