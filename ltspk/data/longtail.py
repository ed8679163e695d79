"""Long-tail tools: minimum counts, long-tail sub-sampling, speaker-ID hold-outs (by session where
sessions are known), shot groups."""

import math
import random
from dataclasses import dataclass, field

import numpy as np

from ltspk.data.manifest import speaker_counts
from ltspk.runtime.errors import HparamsError

SHOT_GROUPS = ("many", "medium", "few")
AUTO = "auto"
# ``auto`` hold-outs: these fractions of a small speaker's recordings (the 10th percentile of the
# speakers' counts), at least one: 10 test and 5 validation recordings of 100, 1 and 1 of 2 to 30
AUTO_HOLDOUT_FRACTION = {"spkid_test": 0.10, "spkid_valid": 0.05}
AUTO_HOLDOUT_PERCENTILE = 10


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
    ``n_max * imbalance_factor ** (-i / (C - 1))`` utterances, rounded down, but never fewer than
    the smallest speaker's target rounded up (so the imbalance reached, ``n_max / min``, is at
    most the target: rounding the smallest down would overshoot it, e.g. 29 for a target of 20
    with ``n_max`` 29), and never more than a speaker has; where a speaker has fewer than its
    target, every count is capped at the target times the smallest count.
    """
    if imbalance_factor < 1:
        raise HparamsError(f"imbalance_factor must be >= 1, got {imbalance_factor}")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        return {}
    n_max, c = ranked[0][1], len(ranked)
    floor_all = max(1, math.ceil(n_max / imbalance_factor - 1e-9))
    targets = {}
    for i, (spk, n) in enumerate(ranked):
        profile = n_max * imbalance_factor ** (-i / (c - 1)) if c > 1 else n_max
        targets[spk] = min(n, max(floor_all, int(math.floor(profile + 1e-9))))
    # a speaker smaller than its target keeps all it has; the head is then capped at the target
    # times the smallest count, so the imbalance reached stays at most the target
    cap = max(1, int(math.floor(imbalance_factor * min(targets.values()) + 1e-9)))
    return {spk: min(t, cap) for spk, t in targets.items()}


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


HOLDOUT_BY = ("session", "utterance")


@dataclass
class HoldoutSplit:
    train: list
    test: list
    too_small: list  # speakers kept whole in training: too few utterances to hold out from
    by_session: list = field(default_factory=list)  # speakers whose test is whole sessions unseen in training
    fallback: dict = field(default_factory=dict)  # speaker -> why its test is random recordings instead
    unused: list = field(default_factory=list)  # recordings of held-out sessions beyond the test: in neither
    reduced: list = field(default_factory=list)  # speakers holding out one (``shrink``): too few for the size


def session_blocks(utts, sessions):
    """A speaker's utterances in blocks that share no session (sessions linked through an
    utterance of several sessions, e.g. a concatenation of clips, are one block), or None when
    any utterance's session is unknown."""
    parent = {}

    def root(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u in utts:
        labels = session_set(sessions.get(u.ID))
        if not labels:
            return None
        first, *rest = sorted(labels)
        for other in rest:
            parent[root(other)] = root(first)
    blocks = {}
    for u in utts:
        blocks.setdefault(root(min(session_set(sessions[u.ID]))), []).append(u)
    return [blocks[k] for k in sorted(blocks)]


def session_set(value):
    """The sessions of one utterance as a set: a label, a collection of labels, or None (unknown)."""
    if value is None or value == "":
        return set()
    if isinstance(value, str):
        return {value}
    return {str(v) for v in value if v not in (None, "")}


def hold_out_sessions(blocks, per_speaker, min_train, rng, min_blocks_left=1):
    """Blocks held out until they hold ``per_speaker`` utterances while at least ``min_train``
    utterances and ``min_blocks_left`` blocks stay; None when no such choice. The smallest blocks
    go first (random among equal sizes, with ``rng``), so that little of a held-out session is
    left over, in neither split, and a large session stays for training."""
    order = list(range(len(blocks)))
    rng.shuffle(order)
    order.sort(key=lambda i: len(blocks[i]))  # stable: the shuffle decides among equal sizes
    total = sum(len(b) for b in blocks)
    held, n_held = [], 0
    for i in order:
        if n_held >= per_speaker:
            break
        if len(blocks) - len(held) - 1 < min_blocks_left or total - n_held - len(blocks[i]) < min_train:
            continue
        held.append(i)
        n_held += len(blocks[i])
    return held if n_held >= per_speaker else None


def speaker_id_split(utterances, per_speaker, min_train=1, seed=0, sessions=None, by="session", shrink=False):
    """Hold out ``per_speaker`` utterances of every speaker for a balanced speaker-ID test.

    ``by="session"`` with ``sessions`` (utterance ID -> session label(s)): where a speaker has two
    or more sessions, the held-out utterances come from whole sessions (chosen with the seed) that
    none of the speaker's training utterances come from, as deployment meets a new call or video;
    what those sessions hold beyond ``per_speaker`` is in neither split (``unused``). A speaker
    with one session, an unknown session, or sessions that cannot supply the hold-out and keep
    training, falls back to random utterances and is listed in ``fallback`` with the reason.
    ``by="utterance"``: random utterances for everyone. A speaker needs ``per_speaker + min_train``
    utterances; smaller ones stay whole in training and are listed in ``too_small`` (reported,
    never dropped silently), unless ``shrink`` (the ``auto`` sizes): then a speaker with too few
    for ``per_speaker`` but at least ``1 + min_train`` holds out one, and is listed in ``reduced``.
    """
    if by not in HOLDOUT_BY:
        raise HparamsError(f"holdout_by must be one of {', '.join(HOLDOUT_BY)}, got {by!r}")
    rng = random.Random(seed)
    test_ids, out_ids, too_small, by_session, fallback, reduced = set(), set(), [], [], {}, []
    for spk, utts in sorted(group_by_speaker(utterances).items()):
        utts = sorted(utts, key=lambda u: u.ID)
        k = per_speaker
        if len(utts) < k + min_train:
            if not shrink or len(utts) < 1 + min_train:
                too_small.append(spk)
                continue
            k = 1
            reduced.append(spk)
        if by == "session":
            blocks = session_blocks(utts, sessions or {})
            if blocks is None:
                why = "session unknown"
            elif len(blocks) < 2:
                why = "one session"
            else:
                held = hold_out_sessions(blocks, k, min_train, rng)
                if held is not None:
                    pool = sorted((u for i in held for u in blocks[i]), key=lambda u: u.ID)
                    chosen = {u.ID for u in rng.sample(pool, k)}
                    test_ids |= chosen
                    out_ids |= {u.ID for u in pool} - chosen
                    by_session.append(spk)
                    continue
                why = "sessions too small to hold out whole"
            fallback[spk] = why
        test_ids.update(u.ID for u in rng.sample(utts, k))
    train = [u for u in utterances if u.ID not in test_ids and u.ID not in out_ids]
    test = [u for u in utterances if u.ID in test_ids]
    unused = [u for u in utterances if u.ID in out_ids]
    return HoldoutSplit(train, test, too_small, by_session, fallback, unused, reduced)


def auto_holdout(counts, fraction):
    """Recordings to hold out per speaker: ``fraction`` of the 10th percentile of ``counts``
    (speaker -> recordings), rounded down, at least 1."""
    values = np.asarray(list(counts.values()), dtype=float)
    if values.size == 0:
        return 1
    small = float(np.percentile(values, AUTO_HOLDOUT_PERCENTILE, method="lower"))
    return max(1, int(math.floor(fraction * small + 1e-9)))


def cross_session(held, train, sessions):
    """How many ``held`` utterances come from sessions that none of their speaker's ``train``
    utterances come from: ``{"utterances", "cross_session", "same_session", "session_unknown"}``."""
    seen = {}
    for u in train:
        seen.setdefault(u.spk_id, set()).update(session_set(sessions.get(u.ID)))
    out = {"utterances": len(held), "cross_session": 0, "same_session": 0, "session_unknown": 0}
    for u in held:
        labels = session_set(sessions.get(u.ID))
        if not labels:
            out["session_unknown"] += 1
        elif labels & seen.get(u.spk_id, set()):
            out["same_session"] += 1
        else:
            out["cross_session"] += 1
    return out


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
    def fitted(cls, counts, many_above="auto", few_below="auto"):
        """Fixed thresholds, or ``"auto"`` ones fitted to the training counts: the tertiles of the
        speakers' counts, so that each group holds about a third of the speakers whatever the corpus."""
        auto = cls.from_quantiles(counts) if AUTO in (many_above, few_below) else None
        return cls(many_above=auto.many_above if many_above == AUTO else float(many_above),
                   few_below=auto.few_below if few_below == AUTO else float(few_below))

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
            "many": f"n > {self.many_above:.4g}",
            "medium": f"{self.few_below:.4g} <= n <= {self.many_above:.4g}",
            "few": f"n < {self.few_below:.4g}",
            "many_above": self.many_above,
            "few_below": self.few_below,
        }


def shot_groups(counts, thresholds):
    """Map speaker -> 'many' | 'medium' | 'few' from its training count."""
    return {spk: thresholds.group(n) for spk, n in counts.items()}


def imbalance_factor(counts):
    values = list(counts.values())
    return max(values) / min(values) if values else float("nan")
