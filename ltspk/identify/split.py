"""The role split: which speakers are impostors, and per speaker which recordings are enrolled, held
out for validation or test (whole sessions never enrolled, where known), or left unused; the
long-tail sub-sampling of the enrolled recordings. Each speaker's draw is seeded by (seed, speaker)."""

import hashlib
import random

from ltspk.data.folder import id_session
from ltspk.data.longtail import cross_session, hold_out_sessions, longtail_subsample, session_blocks
from ltspk.runtime.errors import DataError


def rank_speakers(names, seed):
    """``names`` in the order of a seeded hash (impostors: alternate ones serve validation and test)."""
    return sorted(names, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())


def resolve_impostors(spec, speakers, seed):
    """Impostor speaker names from None, a number, a fraction, names, or a comma-separated string."""
    speakers = sorted(set(speakers))
    if spec in (None, "", 0, "0", []):
        return []
    if isinstance(spec, str):
        try:
            spec = float(spec)
        except ValueError:
            spec = [s.strip() for s in spec.split(",") if s.strip()]
    if isinstance(spec, (list, tuple)):
        names = sorted(set(spec))
        unknown = [s for s in names if s not in speakers]
        if unknown:
            raise DataError("impostors", f"not speakers of the data: {', '.join(unknown[:5])}")
    else:
        v = float(spec)
        n = int(round(v * len(speakers))) if 0 < v < 1 else int(v)
        names = sorted(rank_speakers(speakers, seed)[:n])
    if len(names) < 2 or len(speakers) - len(names) < 2:
        raise DataError("impostors", f"{len(names)} impostor speaker(s) of {len(speakers)}: need at least 2 (one set "
                                     "for the threshold on validation, one for the test) and 2 left to enrol")
    return names


def longtail_enrolment(rows, settings, impostors):
    """Hold out first, then sub-sample: (rows, roles) where every speaker's test and validation
    recordings (``assign_roles`` on all of ``rows``) and the impostors' recordings are kept, and the
    enrolled recordings are sub-sampled to an exponential long tail of ``imbalance_factor``
    (``ltspk.data.longtail.longtail_subsample``, seeded by ``seed``)."""
    roles, _ = assign_roles(rows, settings, set(impostors))
    kept = {u.ID for u in longtail_subsample([u for u, r in zip(rows, roles) if r == "enrol"],
                                            settings.imbalance_factor, settings.seed)}
    pairs = [(u, r) for u, r in zip(rows, roles) if r != "enrol" or u.ID in kept]
    return [u for u, _ in pairs], [r for _, r in pairs]


def _session_roles(idx, rows, t, v, pattern, rng):
    """Test and validation indices as whole sessions never enrolled (None when the speaker's
    sessions are unknown, one, or cannot give the test and keep enrolment). The validation
    recordings are random ones of the sessions left when those are too few for whole sessions."""
    utts = [rows[i] for i in idx]
    blocks = session_blocks(utts, {u.ID: id_session(u.ID, pattern) for u in utts})
    if blocks is None or len(blocks) < 2:
        return None
    pos = {u.ID: i for u, i in zip(utts, idx)}
    chosen = {}
    for name, n, need in (("test", t, 1 + v), ("valid", v, 1)):
        if not n:
            continue
        held = hold_out_sessions(blocks, n, need, rng)
        if held is None:
            if name == "test":
                return None
            rest = sorted((u for b in blocks for u in b), key=lambda u: u.ID)
            chosen["valid"] = [pos[u.ID] for u in rng.sample(rest, n)]
            break
        pool = sorted((u for k in held for u in blocks[k]), key=lambda u: u.ID)
        chosen[name] = [pos[u.ID] for u in rng.sample(pool, n)]
        picked = set(chosen[name])
        chosen[name + "_unused"] = [pos[u.ID] for u in pool if pos[u.ID] not in picked]
        blocks = [b for k, b in enumerate(blocks) if k not in held]
    return chosen


def assign_roles(rows, settings, impostors):
    """Role per row: enrol, valid, test, impostor_valid, impostor_test, or unused (the rest of a
    held-out session); and the speakers too small to hold out from. With ``holdout_by: session``
    a speaker's test and validation recordings are whole sessions it never enrols from, where its
    sessions allow (``id_session``); otherwise random recordings. Each speaker's draw is seeded by
    (seed, speaker) alone."""
    t, v, seed = settings.test_per_speaker, settings.valid_per_speaker, settings.seed
    ranked = rank_speakers(impostors, seed)
    imp_valid = set(ranked[0::2])
    by_spk = {}
    for i, u in enumerate(rows):
        by_spk.setdefault(u.spk_id, []).append(i)
    roles, too_small = [None] * len(rows), []
    for spk in sorted(by_spk):
        idx = sorted(by_spk[spk], key=lambda i: rows[i].ID)
        if spk in impostors:
            for i in idx:
                roles[i] = "impostor_valid" if spk in imp_valid else "impostor_test"
            continue
        for i in idx:
            roles[i] = "enrol"
        if len(idx) < t + v + 1:
            too_small.append(spk)
            continue
        rng = random.Random(f"{seed}:{spk}")
        by_session = (_session_roles(idx, rows, t, v, settings.session_pattern, rng)
                      if settings.holdout_by == "session" else None)
        if by_session is not None:
            for role, picked in by_session.items():
                for i in picked:
                    roles[i] = "unused" if role.endswith("_unused") else role
            continue
        held = rng.sample(idx, t + v)
        for i in held[:t]:
            roles[i] = "test"
        for i in held[t:]:
            roles[i] = "valid"
    return roles, too_small


def holdout_counts(rows, roles, settings):
    """How the test and validation recordings were held out, and how many are cross-session."""
    sessions = {u.ID: id_session(u.ID, settings.session_pattern) for u in rows}
    enrol = [u for u, r in zip(rows, roles) if r == "enrol"]
    out = {"by": settings.holdout_by, "unused": int(sum(1 for r in roles if r == "unused"))}
    for name in ("test", "valid"):
        out[name] = cross_session([u for u, r in zip(rows, roles) if r == name], enrol, sessions)
    return out
