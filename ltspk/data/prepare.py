"""The preparation steps every corpus shares, after its loader has listed the files.

A corpus loader yields ``FileEntry`` items for training and for verification plus its
trials. ``finish_preparation`` probes the audio, reports bad files, applies the optional
long-tail controls, splits a balanced speaker-ID test off training, and writes:

- ``train.csv``         training utterances (natural long tail kept: never capped)
- ``spkid_test.csv``    held-out utterances of training speakers (balanced speaker-ID test)
- ``spkid_valid.csv``   a second hold-out for choosing inference settings (empty unless asked for)
- ``verification.csv``  utterances that appear in trials (speakers disjoint from training)
- ``trials.txt``        ``<0|1> <enrol_id> <test_id>``
- ``enrol_map.json``    enrol ID -> its source utterance IDs (when the corpus defines one)
- ``concat_map.json``   concatenated utterance ID -> its source clip IDs (with ``concat``, see ltspk.data.concat)
- ``counts.json``       per-speaker counts, shot groups, thresholds, the hold-outs (how many are
                        cross-session), warnings, what was dropped and why
- ``bad_files.txt``     each unusable audio file with the reason
"""

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ltspk.data.audio import probe_many, refuse_bad_files
from ltspk.data.longtail import (
    AUTO,
    AUTO_HOLDOUT_FRACTION,
    HOLDOUT_BY,
    SHOT_GROUPS,
    ShotThresholds,
    auto_holdout,
    cross_session,
    filter_min_utterances,
    imbalance_factor,
    longtail_subsample,
    session_set,
    shot_groups,
    speaker_id_split,
)
from ltspk.data.manifest import Utterance, speaker_counts, write_manifest
from ltspk.data.trials import check_trial_labels, check_trials_cover, write_trials
from ltspk.runtime.atomic import write_json, write_text
from ltspk.runtime.errors import DataError, HparamsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileEntry:
    id: str
    spk_id: str
    path: str
    session: str | None = None  # recording occasion (video, chapter, call, word...); None: unknown


@dataclass
class PrepOptions:
    """Options shared by every corpus. Nothing here caps a speaker's utterances."""

    min_utterances: int = 1
    imbalance_factor: float | None = None  # long-tail sub-sampling target, None = natural
    holdout_per_speaker: int | str = 2  # speaker-ID test utterances per training speaker, or "auto"
    valid_per_speaker: int | str = 0  # speaker-ID validation utterances per training speaker, or "auto"
    holdout_by: str = "session"  # "session": hold-outs are whole sessions unseen in training; "utterance"
    shot_many_above: float | str = 100  # or "auto": tertiles of the training counts
    shot_few_below: float | str = 20
    shot_quantiles: tuple | None = None  # e.g. (1/3, 2/3) instead of fixed thresholds
    seed: int = 0
    workers: int = 8
    verify_samples: bool = False
    min_seconds: float = 0.1  # shorter files are listed as bad (an embedder needs some frames)
    on_bad_file: str = "skip"  # "skip" (report and go on) or "raise"
    progress: bool = True

    def __post_init__(self):
        """Impossible values are refused here, naming the key, before any audio is read."""
        for key in ("holdout_per_speaker", "valid_per_speaker"):
            v = getattr(self, key)
            if v != AUTO and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise DataError(key, f"must be a whole number >= 0 or 'auto', got {v!r}")
        for key in ("shot_many_above", "shot_few_below"):
            v = getattr(self, key)
            if v != AUTO and not _finite(v, 0):
                raise DataError(key, f"must be a finite number >= 0 or 'auto', got {v!r}")
        if AUTO not in (self.shot_many_above, self.shot_few_below) and self.shot_few_below > self.shot_many_above:
            raise DataError("shot_few_below", f"{self.shot_few_below:g} is above shot_many_above "
                                              f"{self.shot_many_above:g}: few must be below many")
        q = self.shot_quantiles
        if q is not None and (len(q) != 2 or not all(_finite(x, 0) and x <= 1 for x in q) or q[0] > q[1]):
            raise DataError("shot_quantiles", f"must be [low, high] with 0 <= low <= high <= 1, got {q!r}")
        if self.holdout_by not in HOLDOUT_BY:
            raise DataError("holdout_by", f"must be one of {', '.join(HOLDOUT_BY)}, got {self.holdout_by!r}")
        v = self.imbalance_factor
        if v is not None and not _finite(v, 1):
            raise DataError("imbalance_factor", f"must be a finite number >= 1 or null (natural counts), got {v!r}")
        if isinstance(self.min_utterances, bool) or not isinstance(self.min_utterances, int) or self.min_utterances < 1:
            raise DataError("min_utterances", f"must be a whole number >= 1, got {self.min_utterances!r}")


def _finite(v, low):
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= low


@dataclass
class Prepared:
    folder: Path
    n_train: int
    n_spkid_test: int
    n_speakers: int
    n_trials: int
    bad_files: list = field(default_factory=list)
    too_small: list = field(default_factory=list)


def _to_utterances(entries, infos):
    rows = []
    for e in entries:
        info = infos.get(e.path)
        if info is not None:
            rows.append(Utterance(e.id, info.duration, os.path.abspath(e.path), 0, info.frames, e.spk_id))
    return rows


def _check_unique(entries, what):
    seen = {}
    for e in entries:
        if e.id in seen and seen[e.id] != e.path:
            raise DataError(e.path, f"duplicate {what} utterance ID {e.id!r} (also {seen[e.id]})")
        seen[e.id] = e.path


def finish_preparation(corpus, save_folder, train_entries, verification_entries, trials,
                       options, trials_source="", enrol_map=None, meta=None, concat=None):
    """Probe, check and split the listed files and write the preparation (see the module docstring).

    ``concat``: optional ``concat(rows, save_folder) -> (rows, record)`` that replaces the probed
    training rows (bad files already removed), e.g. CN-Celeb's short-clip concatenation
    (``ltspk.data.concat.concat_short_clips``). It runs before the speaker counts, the
    ``min_utterances`` filter, the hold-outs, the long-tail sub-sampling and the shot groups, so
    all of them count what training sees; ``record`` is written to ``counts.json`` as ``"concat"``.
    """
    opts = options or PrepOptions()
    if opts.on_bad_file not in ("skip", "raise"):
        raise HparamsError(f"on_bad_file must be 'skip' or 'raise', got {opts.on_bad_file!r}")
    save = Path(save_folder)
    if not train_entries:
        raise DataError(save, f"{corpus}: no training audio found")
    _check_unique(train_entries, "training")
    _check_unique(verification_entries, "verification")

    train_spk = {e.spk_id for e in train_entries}
    overlap = sorted(train_spk & {e.spk_id for e in verification_entries})
    if overlap:
        raise DataError(
            trials_source or save,
            f"{len(overlap)} verification speaker(s) are also training speakers "
            f"(e.g. {', '.join(overlap[:5])}); train and test speakers must be disjoint",
        )

    if trials:  # before the (long) probe of every file
        check_trial_labels(trials, trials_source or save)

    paths = sorted({e.path for e in train_entries} | {e.path for e in verification_entries})
    infos, bad = probe_many(paths, opts.workers, opts.verify_samples, opts.progress, f"{corpus}: probing audio",
                            min_seconds=opts.min_seconds)
    for p, why in bad[:20]:
        log.warning("bad audio file %s: %s", p, why)
    refuse_bad_files(bad, opts.on_bad_file)
    write_text(save / "bad_files.txt", "".join(f"{p}\t{why}\n" for p, why in bad))

    train = _to_utterances(train_entries, infos)
    sessions = {e.id: e.session for e in train_entries}
    concat_record = None
    if concat is not None:
        train, concat_record = concat(train, save)
        sessions.update(_concat_sessions(save, sessions))
    natural = speaker_counts(train)
    train, below_min = filter_min_utterances(train, opts.min_utterances)
    if not train:
        raise DataError(save, f"{corpus}: no training data: every training file was bad or dropped (see bad_files.txt)")
    # balanced speaker-ID test and validation hold-outs first, from every speaker's own pool (whole
    # sessions unseen in training where sessions are known), then the long-tail sub-sampling of what
    # is left for training (as long-tailed CIFAR/ImageNet-LT do): every speaker keeps its test
    # utterances and the training counts reach the target imbalance
    pool = speaker_counts(train)
    requested = {"spkid_test": opts.holdout_per_speaker, "spkid_valid": opts.valid_per_speaker}
    sizes = {name: auto_holdout(pool, AUTO_HOLDOUT_FRACTION[name]) if n == AUTO else n for name, n in requested.items()}
    splits = {}
    train_rows, held = train, {"spkid_test": [], "spkid_valid": []}
    for name, seed in (("spkid_test", opts.seed), ("spkid_valid", opts.seed + 1)):
        if sizes[name]:
            splits[name] = speaker_id_split(train_rows, sizes[name], seed=seed, sessions=sessions, by=opts.holdout_by,
                                            shrink=requested[name] == AUTO)
            train_rows, held[name] = splits[name].train, splits[name].test
    test_rows, valid_rows = held["spkid_test"], held["spkid_valid"]
    too_small = splits["spkid_test"].too_small if "spkid_test" in splits else []
    if opts.imbalance_factor:
        own = imbalance_factor(speaker_counts(train_rows))
        if own > 1.5 * opts.imbalance_factor:
            raise DataError(save, f"the training speakers are already more imbalanced (max/min utterances {own:g}) than "
                                  f"the target imbalance_factor {opts.imbalance_factor:g}: sub-sampling only removes "
                                  "utterances, so it cannot balance them. Leave imbalance_factor unset for the natural "
                                  f"counts, or ask for {own:g} or more")
        train_rows = longtail_subsample(train_rows, opts.imbalance_factor, opts.seed)

    verification = _to_utterances(verification_entries, infos)
    if trials:
        check_trials_cover(trials, {u.ID for u in verification}, trials_source or save)

    counts = speaker_counts(train_rows)
    if opts.shot_quantiles:
        thresholds = ShotThresholds.from_quantiles(counts, *opts.shot_quantiles)
    else:
        thresholds = ShotThresholds.fitted(counts, opts.shot_many_above, opts.shot_few_below)
    groups = shot_groups(counts, thresholds)
    group_sizes = {g: sum(1 for v in groups.values() if v == g) for g in SHOT_GROUPS}
    holdout = holdout_record(opts.holdout_by, requested, sizes, splits, train_rows, held, sessions)
    fitted = AUTO in (opts.shot_many_above, opts.shot_few_below) or bool(opts.shot_quantiles)
    warnings = preparation_warnings(counts, group_sizes, holdout, fitted)
    for w in warnings:
        log.warning("%s: %s", corpus, w)

    write_manifest(save / "train.csv", train_rows)
    write_manifest(save / "spkid_test.csv", test_rows)
    write_manifest(save / "spkid_valid.csv", valid_rows)
    write_manifest(save / "verification.csv", verification)
    if trials:
        write_trials(save / "trials.txt", trials)
    if enrol_map:
        write_json(save / "enrol_map.json", enrol_map)
    extra = {} if concat is None else {"concat": concat_record}
    write_json(save / "counts.json", {
        "corpus": corpus,
        "n_speakers": len(counts),
        "n_train_utterances": len(train_rows),
        "n_spkid_test_utterances": len(test_rows),
        "n_spkid_valid_utterances": len(valid_rows),
        "n_verification_utterances": len(verification),
        "n_trials": len(trials or []),
        "trials_source": str(trials_source),
        "imbalance_factor": imbalance_factor(counts),
        "imbalance_factor_target": opts.imbalance_factor,
        "options": {k: v for k, v in vars(opts).items() if k not in ("progress", "workers")},
        "shot_thresholds": {**thresholds.as_dict(), "fitted": AUTO in (opts.shot_many_above, opts.shot_few_below)
                            and not opts.shot_quantiles},
        "holdout": holdout,
        "warnings": warnings,
        "shot_group_sizes": group_sizes,
        "counts": counts,
        "natural_counts": natural,
        "shot_groups": groups,
        "dropped_below_min_utterances": below_min,
        "too_small_to_hold_out": too_small,
        "n_bad_files": len(bad),
        "meta": meta or {},
        **extra,
    })
    log.info("%s: %d speakers, %d training / %d speaker-ID test utterances, %d trials -> %s",
             corpus, len(counts), len(train_rows), len(test_rows), len(trials or []), save)
    return Prepared(save, len(train_rows), len(test_rows), len(counts), len(trials or []), bad, too_small)


def _concat_sessions(save, sessions):
    """The sessions of concatenated utterances: those of their source clips."""
    from ltspk.data.concat import CONCAT_MAP

    path = Path(save) / CONCAT_MAP
    if not path.is_file():
        return {}
    out = {}
    for new_id, sources in json.loads(path.read_text()).items():
        labels = set().union(*(session_set(sessions.get(s)) for s in sources))
        out[new_id] = sorted(labels) if labels and all(session_set(sessions.get(s)) for s in sources) else None
    return out


def holdout_record(by, requested, sizes, splits, train_rows, held, sessions):
    """What ``counts.json`` says of the hold-outs: their sizes, how they were drawn, and per split
    how many recordings come from sessions their speaker's training never saw."""
    out = {"by": by, "auto": {name: n == AUTO for name, n in requested.items()}}
    for name, rows in held.items():
        split = splits.get(name)
        rec = {"per_speaker": sizes[name], **cross_session(rows, train_rows, sessions)}
        if split is not None:
            rec["speakers"] = len({u.spk_id for u in rows})
            rec["speakers_by_session"] = len(split.by_session)
            rec["speakers_fallback"] = _reasons(split.fallback)
            rec["speakers_too_small"] = split.too_small
            rec["speakers_holding_out_one"] = split.reduced
            rec["recordings_unused"] = len(split.unused)
        out[name] = rec
    return out


def _reasons(fallback):
    out = {}
    for spk, why in sorted(fallback.items()):
        out.setdefault(why, []).append(spk)
    return {why: {"speakers": len(spk), "e.g.": spk[:5]} for why, spk in out.items()}


def preparation_warnings(counts, group_sizes, holdout, fitted=False):
    """Loud, plain sentences for what makes a comparison on this preparation weaker than it looks."""
    out = []
    n = len(counts)
    unused = sum(holdout.get(k, {}).get("recordings_unused", 0) for k in ("spkid_test", "spkid_valid"))
    kept = sum(counts.values()) + sum(holdout.get(k, {}).get("utterances", 0) for k in ("spkid_test", "spkid_valid"))
    if unused > (kept + unused) / 10:
        out.append(f"{unused} of {kept + unused} recordings are in no split: the rest of sessions held out whole "
                   "(smaller hold-outs, or holdout_by: utterance, keep more for training)")
    test = holdout.get("spkid_test", {})
    untested = test.get("speakers_too_small", [])
    if len(untested) > n / 10:
        out.append(f"{len(untested)} of {n} training speakers are not tested (fewer than {test['per_speaker']} + 1 "
                   f"recordings): lower holdout_per_speaker (or 'auto'), e.g. {', '.join(untested[:5])}")
    valid = holdout.get("spkid_valid", {})
    if len(valid.get("speakers_too_small", [])) > n / 10:
        out.append(f"{len(valid['speakers_too_small'])} of {n} training speakers have no validation recordings: "
                   "lower valid_per_speaker (or 'auto')")
    empty = [g for g in SHOT_GROUPS if not group_sizes.get(g)]
    if empty:
        sizes = ", ".join(f"{g} {group_sizes.get(g, 0)}" for g in SHOT_GROUPS)
        out.append(f"shot group(s) {', '.join(empty)} empty ({sizes} speakers): "
                   + ("many speakers share one training count, so the tertiles cannot split them"
                      if fitted else "set shot_many_above / shot_few_below to 'auto' (tertiles of the training counts)"))
    if holdout["by"] == "session" and test.get("utterances"):
        same, unknown = test.get("same_session", 0), test.get("session_unknown", 0)
        if same > test["utterances"] / 10:
            out.append(f"{same} of {test['utterances']} speaker-ID test recordings share a session with their speaker's "
                       "training (speakers with one session, or sessions too small to hold out whole)")
        if unknown > test["utterances"] / 10:
            out.append(f"{unknown} of {test['utterances']} speaker-ID test recordings have no known session, so they are "
                       "random recordings: give session folders or session_pattern to test across sessions")
    return out
