"""Verification trial lists: parsing the corpus formats, generating, and writing.

Internally a trial is ``(label, enrol_id, test_id)`` with utterance IDs as in the
manifests (relative path without extension). The normalised file format is
``<0|1> <enrol_id> <test_id>`` per line (VoxCeleb's order).
"""

import random
from dataclasses import dataclass
from pathlib import PurePosixPath

from ltspk.runtime.atomic import atomic_open
from ltspk.runtime.errors import DataError


def strip_ext(token):
    p = PurePosixPath(token)
    return str(p.with_suffix("")) if p.suffix else token


@dataclass(frozen=True)
class Trial:
    label: int
    enrol: str
    test: str


def _label(path, line_no, token):
    if token not in ("0", "1"):
        raise DataError(path, f"line {line_no}: label must be 0 or 1, got {token!r}")
    return int(token)


def _lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if line.strip() and not line.lstrip().startswith("#"):
                    yield line_no, line.split()
    except FileNotFoundError:
        raise DataError(path, "trial list not found") from None


def read_voxceleb_trials(path):
    """``<label> <enrol> <test>``, e.g. ``1 id10270/x6uYqmx31kE/00001.wav id10270/...``."""
    trials = []
    for line_no, parts in _lines(path):
        if len(parts) != 3:
            raise DataError(path, f"line {line_no}: expected '<0|1> <enrol> <test>', got {' '.join(parts)!r}")
        trials.append(Trial(_label(path, line_no, parts[0]), strip_ext(parts[1]), strip_ext(parts[2])))
    if not trials:
        raise DataError(path, "trial list is empty")
    return trials


def read_cnceleb_trials(path):
    """CN-Celeb ``trials.lst``: ``<enrol_id> <test/...wav> <0|1>`` (``.wav`` even for flac)."""
    trials = []
    for line_no, parts in _lines(path):
        if len(parts) != 3:
            raise DataError(path, f"line {line_no}: expected '<enrol> <test> <0|1>', got {' '.join(parts)!r}")
        trials.append(Trial(_label(path, line_no, parts[2]), strip_ext(parts[0]), strip_ext(parts[1])))
    if not trials:
        raise DataError(path, "trial list is empty")
    return trials


read_trials = read_voxceleb_trials  # the normalised format is VoxCeleb's


def write_trials(path, trials):
    with atomic_open(path, "w", encoding="utf-8") as f:
        for t in trials:
            f.write(f"{t.label} {t.enrol} {t.test}\n")


def check_trials_cover(trials, known_ids, path):
    """Every trial utterance must be in the manifest; name the first missing ones."""
    missing = sorted({i for t in trials for i in (t.enrol, t.test) if i not in known_ids})
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(path, f"{len(missing)} trial utterance(s) not found in the audio: {shown}")


def generate_trials(speaker_of, n_trials, target_ratio=0.5, seed=0, session_of=None):
    """Random trials among the utterances of ``speaker_of`` (utterance ID -> speaker, held-out
    speakers): a fixed share of target pairs (speakers drawn uniformly; the second utterance from
    another session of the speaker where ``session_of`` knows one), the rest non-target; no
    duplicate pairs, no utterance against itself. Linear in ``n_trials``: each draw is O(1)
    and the number of draws is bounded."""
    by_spk = {}
    for uid, spk in sorted(speaker_of.items()):
        by_spk.setdefault(spk, []).append(uid)
    multi = sorted(s for s, v in by_spk.items() if len(v) >= 2)
    if len(by_spk) < 2 or not multi:
        raise ValueError("trial generation needs >= 2 speakers and one with >= 2 utterances")
    session_of = session_of or {}
    other_session = {}  # uid -> utterances of the same speaker in other sessions
    for spk in multi:
        by_sess = {}
        for u in by_spk[spk]:
            by_sess.setdefault(session_of.get(u), []).append(u)
        if len(by_sess) > 1 and None not in by_sess:
            for sess, members in by_sess.items():
                others = [u for s2, m in by_sess.items() if s2 != sess for u in m]
                for u in members:
                    other_session[u] = others
    rng = random.Random(seed)
    speakers = sorted(by_spk)
    max_target = sum(len(v) * (len(v) - 1) // 2 for v in by_spk.values())
    n_target = min(int(round(n_trials * target_ratio)), max_target)
    n_nontarget = n_trials - n_target
    pairs, trials = set(), []

    def add(label, a, b):
        key = (a, b) if a < b else (b, a)
        if a != b and key not in pairs:
            pairs.add(key)
            trials.append(Trial(label, a, b))
            return True
        return False

    made = 0
    for cross in (True, False):  # cross-session pairs first; same-session ones once those run out
        tries = 0
        while made < n_target and tries < 10 * n_trials + 100:
            tries += 1
            utts = by_spk[rng.choice(multi)]
            a = rng.choice(utts)
            pool = other_session.get(a) if cross else None
            b = rng.choice(pool) if pool else rng.choice(utts)
            made += add(1, a, b)
    made, tries = 0, 0
    while made < n_nontarget and tries < 20 * n_trials + 100:
        tries += 1
        s1, s2 = rng.sample(speakers, 2)
        made += add(0, rng.choice(by_spk[s1]), rng.choice(by_spk[s2]))
    rng.shuffle(trials)
    return trials


def check_trial_labels(trials, source):
    """A trial list needs target and non-target trials: EER and minDCF are undefined otherwise."""
    n_target = sum(t.label for t in trials)
    if n_target == 0 or n_target == len(trials):
        raise DataError(source, f"the trial list has {n_target} target and {len(trials) - n_target} non-target "
                                "trials: verification needs both")
