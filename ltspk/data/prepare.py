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
- ``counts.json``       per-speaker counts, shot groups, thresholds, what was dropped and why
- ``bad_files.txt``     each unusable audio file with the reason
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ltspk.atomic import write_json, write_text
from ltspk.data.audio import probe_many, refuse_bad_files
from ltspk.data.longtail import (
    ShotThresholds,
    filter_min_utterances,
    imbalance_factor,
    longtail_subsample,
    shot_groups,
    speaker_id_split,
)
from ltspk.data.manifest import Utterance, speaker_counts, write_manifest
from ltspk.data.trials import check_trial_labels, check_trials_cover, write_trials
from ltspk.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileEntry:
    id: str
    spk_id: str
    path: str


@dataclass
class PrepOptions:
    """Options shared by every corpus. Nothing here caps a speaker's utterances."""

    min_utterances: int = 1
    imbalance_factor: float | None = None  # long-tail sub-sampling target, None = natural
    holdout_per_speaker: int = 2  # speaker-ID test utterances per training speaker
    valid_per_speaker: int = 0  # speaker-ID validation utterances per training speaker
    shot_many_above: float = 100
    shot_few_below: float = 20
    shot_quantiles: tuple | None = None  # e.g. (1/3, 2/3) instead of fixed thresholds
    seed: int = 0
    workers: int = 8
    verify_samples: bool = False
    min_seconds: float = 0.1  # shorter files are listed as bad (an embedder needs some frames)
    on_bad_file: str = "skip"  # "skip" (report and go on) or "raise"
    progress: bool = True


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
        raise ValueError(f"on_bad_file must be 'skip' or 'raise', got {opts.on_bad_file!r}")
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
    concat_record = None
    if concat is not None:
        train, concat_record = concat(train, save)
    natural = speaker_counts(train)
    train, below_min = filter_min_utterances(train, opts.min_utterances)
    if not train:
        raise DataError(save, f"{corpus}: no training data: every training file was bad or dropped (see bad_files.txt)")
    # balanced speaker-ID test and validation hold-outs first, from every speaker's own pool, then
    # the long-tail sub-sampling of what is left for training (as long-tailed CIFAR/ImageNet-LT do):
    # every speaker keeps its test utterances and the training counts reach the target imbalance
    split = speaker_id_split(train, opts.holdout_per_speaker, seed=opts.seed) if opts.holdout_per_speaker else None
    train_rows = split.train if split else train
    test_rows = split.test if split else []
    too_small = split.too_small if split else []
    valid_rows = []
    if opts.valid_per_speaker:
        vsplit = speaker_id_split(train_rows, opts.valid_per_speaker, seed=opts.seed + 1)
        train_rows, valid_rows = vsplit.train, vsplit.test
    if opts.imbalance_factor:
        own = imbalance_factor(speaker_counts(train_rows))
        if own > 1.5 * opts.imbalance_factor:
            raise DataError(save, f"the training speakers are already more imbalanced (max/min utterances {own:g}) than "
                                  f"the target imbalance_factor {opts.imbalance_factor:g}: sub-sampling only removes "
                                  "utterances, so it cannot balance them. Leave imbalance_factor unset for the natural "
                                  f"counts, or ask for {own:g} or more")
        train_rows = longtail_subsample(train_rows, opts.imbalance_factor, opts.seed)
    if too_small:
        log.warning("%d speaker(s) too small to hold out %d utterance(s) from, kept whole in training: %s",
                    len(too_small), opts.holdout_per_speaker, ", ".join(too_small[:10]))

    verification = _to_utterances(verification_entries, infos)
    if trials:
        check_trials_cover(trials, {u.ID for u in verification}, trials_source or save)

    counts = speaker_counts(train_rows)
    if opts.shot_quantiles:
        thresholds = ShotThresholds.from_quantiles(counts, *opts.shot_quantiles)
    else:
        thresholds = ShotThresholds(opts.shot_many_above, opts.shot_few_below)
    groups = shot_groups(counts, thresholds)
    group_sizes = {g: sum(1 for v in groups.values() if v == g) for g in ("many", "medium", "few")}

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
        "options": {k: v for k, v in vars(opts).items() if k not in ("progress", "workers")},
        "shot_thresholds": thresholds.as_dict(),
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
