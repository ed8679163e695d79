"""Concatenation of a speaker's short training clips of one genre into longer utterances.

CN-Celeb has many clips under 2 s, too short to train a speaker embedder on well. Following
WeSpeaker's CN-Celeb v2 recipe (``examples/cnceleb/v2/local/prepare_data.sh`` with
``combine_short_audio=1`` and ``min_duration=5``), the short training clips of one speaker
and one genre (``idXXXXX/<genre>-<session>-<utt>``) are concatenated into new utterances of at
least ``min_seconds``, written as new audio files. Unlike WeSpeaker, which may also absorb a
short clip into a long neighbour, only clips shorter than ``min_seconds`` are combined: the
long clips are kept as they are.

Grouping, per speaker and genre, over the short clips in ID order (the sorted file names, as
WeSpeaker's ``find | sort``): clips are taken in turn until their total reaches
``min_seconds``; the short clips left at the end (together under ``min_seconds``) join the
speaker-genre's last group. When all of a speaker-genre's short clips together stay under
``min_seconds`` they still make one utterance (WeSpeaker too keeps such a speaker-genre,
shorter than the minimum); a lone short clip is kept as it is. Nothing is dropped, and
clips of different speakers or genres are never combined.

The audio is never resampled: a group's clips must share one sample rate (CN-Celeb is 16 kHz;
the training loader resamples as it loads), else a ``DataError`` names the files. All-16-bit
mono sources are copied sample for sample into 16-bit wav; any other source makes the group a
float wav (channels averaged, as ``ltspk.data.audio`` reads them).
"""

import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from ltspk.data.manifest import Utterance
from ltspk.runtime.atomic import atomic_path, write_json
from ltspk.runtime.errors import DataError, HparamsError

CONCAT_DIR = "concat"
CONCAT_MAP = "concat_map.json"
EPS = 1e-6  # seconds: comparisons impervious to float roundoff, as WeSpeaker's (a sample at 16 kHz is 62.5e-6 s)


def is_short(duration, min_seconds):
    return duration < min_seconds - EPS


def genre_key(u):
    """``(speaker, genre)`` of a CN-Celeb training utterance ``idXXXXX/<genre>-<session>-<utt>``."""
    name = u.ID.rsplit("/", 1)[-1]
    genre, sep, _ = name.partition("-")
    if not sep or not genre:
        raise DataError(u.wav, f"utterance {u.ID!r}: expected a CN-Celeb name <genre>-<session>-<utt> to "
                               "concatenate short clips by genre")
    return u.spk_id, genre


def plan_groups(rows, min_seconds, key=genre_key):
    """The groups of short clips to concatenate: ``{(speaker, genre): [[Utterance, ...], ...]}``.

    Only clips shorter than ``min_seconds`` are grouped, in ID order per key; every group but a
    speaker-genre's only one reaches ``min_seconds``. Single-clip groups are left out (such a
    clip is kept as it is)."""
    short = {}
    for u in rows:
        if is_short(u.duration, min_seconds):
            short.setdefault(key(u), []).append(u)
    plan = {}
    for k in sorted(short):
        groups, cur, total = [], [], 0.0
        for u in sorted(short[k], key=lambda r: r.ID):
            cur.append(u)
            total += u.duration
            if not is_short(total, min_seconds):
                groups.append(cur)
                cur, total = [], 0.0
        if cur:
            if groups:
                groups[-1].extend(cur)
            else:
                groups.append(cur)
        groups = [g for g in groups if len(g) > 1]
        if groups:
            plan[k] = groups
    return plan


def _read_group(group):
    """(samples, sample rate, subtype) of a group's clips end to end, never resampled."""
    heads = []
    for u in group:
        try:
            info = sf.info(u.wav)
        except (RuntimeError, sf.LibsndfileError) as e:
            raise DataError(u.wav, f"unreadable audio ({e})") from None
        heads.append(info)
    rates = sorted({h.samplerate for h in heads})
    if len(rates) > 1:
        listed = ", ".join(f"{u.wav} ({h.samplerate} Hz)" for u, h in zip(group, heads))
        raise DataError(group[0].wav, f"cannot concatenate clips of different sample rates {rates}: {listed}")
    pcm16 = all(h.subtype == "PCM_16" and h.channels == 1 for h in heads)
    parts = []
    for u in group:
        with sf.SoundFile(u.wav) as f:
            f.seek(u.start)
            x = f.read(max(0, u.stop - u.start), dtype="int16" if pcm16 else "float32", always_2d=True)
        parts.append(x[:, 0] if pcm16 else x.mean(axis=1, dtype=np.float32))
    return np.concatenate(parts), rates[0], "PCM_16" if pcm16 else "FLOAT"


def _write_group(job):
    new_id, spk, path, group = job
    samples, sr, subtype = _read_group(group)
    with atomic_path(path) as tmp:
        sf.write(tmp, samples, sr, subtype=subtype, format="WAV")
    return Utterance(new_id, len(samples) / sr, str(path), 0, len(samples), spk)


def check_min_seconds(value):
    """``value`` as a positive, finite number of seconds; a ``ValueError`` naming
    ``concat_min_seconds`` otherwise."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise HparamsError(f"concat_min_seconds must be a positive number of seconds or null (off), got {value!r}")
    return seconds


def concat_short_clips(rows, save_folder, min_seconds, key=genre_key, workers=8, progress=True):
    """Concatenate each speaker-genre's short training clips (see the module docstring).

    ``rows`` are probed training utterances; the new audio goes to
    ``<save_folder>/concat/<speaker>/<genre>-concat-NNN.wav`` with IDs
    ``<speaker>/<genre>-concat-NNN``, and ``<save_folder>/concat_map.json`` maps each new ID to
    its source IDs. Returns ``(rows, record)``: the training rows with each group replaced by its
    new utterance (at the place of its first clip), and the counts for ``counts.json``."""
    from tqdm.auto import tqdm

    min_seconds = check_min_seconds(min_seconds)
    save = Path(os.path.abspath(save_folder))
    plan = plan_groups(rows, min_seconds, key)
    taken = {u.ID for u in rows}
    jobs, first_of = [], {}
    for (spk, genre), groups in plan.items():
        for n, group in enumerate(groups, start=1):
            new_id = f"{spk}/{genre}-concat-{n:03d}"
            if new_id in taken:
                raise DataError(group[0].wav, f"the concatenated utterance ID {new_id!r} is already a training utterance")
            jobs.append((new_id, spk, save / CONCAT_DIR / spk / f"{genre}-concat-{n:03d}.wav", group))
            first_of[group[0].ID] = len(jobs) - 1
    sources = {u.ID for job in jobs for u in job[3]}
    shutil.rmtree(save / CONCAT_DIR, ignore_errors=True)  # no stale concatenation of an earlier preparation here
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        made = list(tqdm(pool.map(_write_group, jobs), total=len(jobs), desc="concatenating short clips",
                         disable=not progress, mininterval=1.0))
    out = []
    for u in rows:
        if u.ID in first_of:
            out.append(made[first_of[u.ID]])
        elif u.ID not in sources:
            out.append(u)
    write_json(save / CONCAT_MAP, {job[0]: [u.ID for u in job[3]] for job in jobs})
    record = {
        "min_seconds": float(min_seconds),
        "source_clips": len(rows),
        "short_clips": sum(1 for u in rows if is_short(u.duration, min_seconds)),
        "clips_concatenated": len(sources),
        "utterances_made": len(made),
        "short_left": sum(1 for u in out if is_short(u.duration, min_seconds)),
        "utterances": len(out),
    }
    return out, record
