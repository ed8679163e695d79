"""Enrol a long-tailed speaker set with any embedder: the pipeline, step by step.

``enrol`` (``add_speakers`` runs the same on old + new speakers):

1. List the data (``ltspk.identify.rows``): a speaker-folder corpus (``ltspk.data.folder``), a manifest
   CSV, or a prepared corpus folder (its train / spkid_valid / spkid_test manifests together).
   Unreadable files and files shorter than the embedder's minimum are listed and left out.
2. Embed every file (``ltspk.embedding.file_cache``; resampled to the embedder's rate by
   ``ltspk.embedding.reading``, length-sorted batches), reusing cached embeddings keyed per file (path,
   segment, size, mtime) under a source key (embedder fingerprint, sample rate, ``max_seconds``,
   ``batch_size``): the model folder's own ``arrays.npz``, and ``--cache FILE`` when given.
3. Split per speaker (``ltspk.identify.split``), with a generator seeded by (seed, speaker) so one
   speaker's split never depends on the others: ``test_per_speaker`` test and ``valid_per_speaker``
   validation recordings; the rest (the natural count, never capped) is enrolled. A speaker with fewer
   than test + valid + 1 recordings is enrolled whole and not evaluated (listed). Impostor
   speakers (``impostors``: a number, a fraction or names) are never enrolled; sorted by a
   seeded hash, alternate ones serve validation (threshold choice) and test (open-set figures).
   ``imbalance_factor`` then sub-samples the enrolled recordings only to an exponential long tail
   (``ltspk.data.longtail``; held-out and impostor recordings are all kept), as ``recipes/prepare.py``
   does for training: a balanced test, a long-tailed enrolment.
   Shot groups come from the enrolled counts (``ShotThresholds``, default > 100 / < 20, or quantiles).
4. Fit on the enrolled embeddings, centred on their mean (``ltspk.identify.methods``, ``FAMILIES``),
   every setting chosen on validation accuracy (ties: the least adjustment): ``linear`` (softmax
   regression, instance sampling, trained to convergence: ``ENROL_LINEAR``), ``NCM``
   (cosine to centred class means, ``ltspk.longtail.decoupled.ncm``), ``posthoc_la`` (tau), ``la_loss``
   (tau), ``cRT`` (class-balanced re-training, as ``ltspk.longtail.decoupled.crt``), ``tau_norm``
   (power, on ``linear``'s weights), ``LWS`` (``ltspk.longtail.decoupled.lws`` on ``linear``). Each is
   stored as logits = l2n(x - mu) W^T + b.
5. Calibrate each method by temperature scaling (NLL on validation, scipy; ``ltspk.identify.rejection``);
   choose its rejection score (``prob``: top calibrated probability, ``score``: top logit) by validation
   OSCR area, and the threshold for ``target_far`` on validation impostor probes. Without
   impostor speakers, impostor probes are simulated by leaving each probe's own speaker out
   (labelled "simulated" in the report). The deployed method is the best on validation
   accuracy (or ``method``).
6. Report on the test split (``ltspk.identify.report``): top-1 accuracy by shot group, open-set DIR at
   fixed FARs and OSCR area by shot group, and verification calibration (utterance vs enrolled-speaker
   cosine, logistic calibration fitted on validation trials): EER, minDCF, actDCF, Cllr, min Cllr.

The model folder is written by ``ltspk.identify.model.save_model`` and read by ``EnrolmentModel``.
"""

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ltspk.data.longtail import SHOT_GROUPS, ShotThresholds, shot_groups
from ltspk.data.manifest import speaker_counts
from ltspk.embedding.file_cache import cached_embed, embedding_source
from ltspk.evaluation.metrics import shot_group_accuracy
from ltspk.evaluation.openset import far_at_threshold, openset_report
from ltspk.identify.methods import fit_methods
from ltspk.identify.model import FORMAT, VERSION, EnrolmentModel, save_model
from ltspk.identify.rejection import calibrate_method, impostor_scores, reject_scores, verification_calibration
from ltspk.identify.rows import list_rows
from ltspk.identify.settings import FAMILIES, EnrolSettings
from ltspk.identify.split import assign_roles, holdout_counts, longtail_enrolment, rank_speakers, resolve_impostors
from ltspk.runtime.errors import DataError

log = logging.getLogger("ltspk.identify")  # identification's one logger (the recipe prints its name)


def _split(rows, settings, impostors, roles):
    """(role per row as an array, speakers too small to hold out from): ``assign_roles``, or the
    speakers enrolled but never held out when ``roles`` were given."""
    if roles is None:
        roles, too_small = assign_roles(rows, settings, set(impostors))
    else:
        held = {u.spk_id for u, r in zip(rows, roles) if r in ("test", "valid")}
        too_small = sorted({u.spk_id for u, r in zip(rows, roles) if r == "enrol"} - held)
    return np.asarray(roles), too_small


def _labels(rows, roles, settings):
    """(enrolled speakers, speaker per row, class per row (-1: not enrolled), row mask per role);
    an error without 2 speakers to enrol or without validation recordings."""
    enrolled = sorted({u.spk_id for u, r in zip(rows, roles) if r == "enrol"})
    if len(enrolled) < 2:
        raise DataError("enrolment", f"{len(enrolled)} speaker(s) to enrol: closed-set identification needs at least 2")
    cls = {s: i for i, s in enumerate(enrolled)}
    spk = np.asarray([u.spk_id for u in rows])
    y = np.asarray([cls.get(s, -1) for s in spk])
    m = {r: roles == r for r in ("enrol", "valid", "test", "impostor_valid", "impostor_test")}
    if not m["valid"].any():
        raise DataError("enrolment", f"no validation recordings: every speaker has fewer than test + valid + 1 = "
                                     f"{settings.test_per_speaker + settings.valid_per_speaker + 1} recordings; lower "
                                     "--test-per-speaker / --valid-per-speaker")
    return enrolled, spk, y, m


def _shot_groups(rows, roles, enrolled, settings):
    """(enrolled recordings per speaker, the same in class order, shot thresholds, shot group per speaker)."""
    counts_map = speaker_counts([u for u, r in zip(rows, roles) if r == "enrol"])
    counts = [counts_map[s] for s in enrolled]
    th = (ShotThresholds.from_quantiles(counts_map, *settings.quantiles) if settings.quantiles
          else ShotThresholds.fitted(counts_map, settings.many_above, settings.few_below))
    return counts_map, counts, th, shot_groups(counts_map, th)


def _calibrate(fitted, emb, m, xv, yv, n_classes, settings):
    """({method: its model.json entry} (``calibrate_method``), the scorers' arrays)."""
    methods, arrays = {}, {}
    for name, (scorer, params, sweep) in fitted.items():
        z_v = scorer.logits(xv)
        z_iv = scorer.logits(emb[m["impostor_valid"]]) if m["impostor_valid"].any() else np.zeros((0, n_classes))
        methods[name] = calibrate_method(z_v, yv, z_iv, params, sweep, settings)
        for part in ("mu", "W", "b"):
            arrays[f"{name}.{part}"] = np.asarray(getattr(scorer, part), np.float32)
    return methods, arrays


def _deploy(methods, settings):
    """The deployed method: ``settings.method``, or the best on validation accuracy (ties: earlier in FAMILIES)."""
    chosen = settings.method if settings.method != "auto" else max(
        FAMILIES, key=lambda f: (methods[f]["valid_accuracy"], -FAMILIES.index(f)))
    if methods[chosen]["threshold_caution"]:
        log.warning("%s: %s", chosen, methods[chosen]["threshold_caution"])
    return chosen


def _test_figures(fitted, methods, emb, y, m, enrolled, groups, settings):
    """{method: closed-set accuracy, open-set figures and the deployed threshold's rates} on the test hold-out."""
    report_methods = {}
    xt, yt = emb[m["test"]], y[m["test"]]
    gt = np.asarray([groups[enrolled[c]] for c in yt])
    for name, (scorer, _, _) in fitted.items():
        info = methods[name]
        zt = scorer.logits(xt)
        z_it = scorer.logits(emb[m["impostor_test"]]) if m["impostor_test"].any() else np.zeros((0, len(enrolled)))
        closed = shot_group_accuracy(zt.argmax(1), yt, gt)
        ks = reject_scores(zt, info["temperature"], info["reject_by"])
        imp, simulated = impostor_scores(zt, yt, z_it, info["temperature"], info["reject_by"])
        opn = openset_report(ks, zt.argmax(1) == yt, gt, imp, tuple(settings.fars))
        at = {**far_at_threshold(imp, info["threshold"]),
              "dir": 100 * float(((zt.argmax(1) == yt) & (ks >= info["threshold"])).mean())}
        report_methods[name] = {"closed_set": closed, "open_set": opn, "at_deployed_threshold": at,
                                "impostors": "simulated (own speaker left out)" if simulated else "test impostor speakers"}
    return report_methods


def _row_arrays(rows, keys, spk, roles, emb, source):
    """The per-recording arrays of ``arrays.npz``: what refitting (``add_speakers``) and the cache need."""
    return dict(utt_keys=np.asarray(keys, dtype=str), utt_ids=np.asarray([u.ID for u in rows], dtype=str),
                utt_speakers=spk.astype(str), utt_paths=np.asarray([u.wav for u in rows], dtype=str),
                utt_start=np.asarray([u.start for u in rows], np.int64),
                utt_stop=np.asarray([u.stop for u in rows], np.int64),
                utt_duration=np.asarray([u.duration for u in rows], np.float64),
                utt_roles=roles.astype(str), embeddings=emb.astype(np.float32),
                source=np.asarray(json.dumps(source, sort_keys=True)))


def build(rows, keys, emb, settings, embedder_info, impostors, roles=None):
    """Fit everything on (rows, embeddings): the model document, its arrays and the report.
    ``roles`` (one per row) when the split was made already (``longtail_enrolment``, or a saved
    enrolment's); else ``assign_roles``."""
    t0 = time.perf_counter()
    roles, too_small = _split(rows, settings, impostors, roles)
    enrolled, spk, y, m = _labels(rows, roles, settings)
    counts_map, counts, th, groups = _shot_groups(rows, roles, enrolled, settings)
    xe, ye, xv, yv = emb[m["enrol"]], y[m["enrol"]], emb[m["valid"]], y[m["valid"]]
    fitted = fit_methods(xe, ye, xv, yv, counts, settings)
    methods, arrays = _calibrate(fitted, emb, m, xv, yv, len(enrolled), settings)
    chosen = _deploy(methods, settings)

    report = {"n_enrolled_speakers": len(enrolled), "n_impostor_speakers": len(impostors),
              "split_sizes": {r: int(v.sum()) for r, v in m.items()}, "shot_thresholds": th.as_dict(),
              "shot_group_sizes": {g: sum(1 for s in enrolled if groups[s] == g) for g in SHOT_GROUPS},
              "too_small_to_hold_out": too_small, "deployed_method": chosen}
    if m["test"].any():
        report["test"] = _test_figures(fitted, methods, emb, y, m, enrolled, groups, settings)
        report["verification"] = verification_calibration(fitted["NCM"][0], emb, y, m)
    info = {"format": FORMAT, "version": VERSION, "embedder": embedder_info["embedder"],
            "embedding_source": embedder_info["source"], "embedding_dim": int(emb.shape[1]),
            "settings": {**asdict(settings), "impostors": list(impostors)}, "speakers": enrolled,
            "counts": {s: counts_map[s] for s in enrolled}, "shot_groups": {s: groups[s] for s in enrolled},
            "shot_thresholds": th.as_dict(),
            "holdout": holdout_counts(rows, roles, settings),
            "impostor_speakers": {"valid": sorted(set(rank_speakers(impostors, settings.seed)[0::2])),
                                  "test": sorted(set(rank_speakers(impostors, settings.seed)[1::2]))},
            "methods": methods, "deployed": {"method": chosen, **{k: methods[chosen][k] for k in
                                                                 ("temperature", "reject_by", "threshold")},
                                             "target_far": settings.target_far}}
    arrays.update(_row_arrays(rows, keys, spk, roles, emb, embedder_info["source"]))
    report["seconds_fit_and_evaluate"] = time.perf_counter() - t0
    return info, arrays, report


def _embedder_info(embedder, settings):
    return {"embedder": embedder.describe(), "source": embedding_source(embedder, settings)}


def enrol(embedder, data, out, settings=None, cache=None, progress=False):
    """Enrol the speakers of ``data`` with ``embedder`` into the model folder ``out``."""
    settings = (settings or EnrolSettings()).check()
    t0 = time.perf_counter()
    rows, bad = list_rows(data, embedder.min_seconds, progress)
    impostors = resolve_impostors(settings.impostors, [u.spk_id for u in rows], settings.seed)
    roles = None
    if settings.imbalance_factor:
        rows, roles = longtail_enrolment(rows, settings, impostors)
    caches = [Path(out) / "arrays.npz"] + ([Path(cache)] if cache else [])
    keys, emb, n_new = cached_embed(embedder, rows, settings, caches, progress)
    t_emb = time.perf_counter() - t0
    info, arrays, report = build(rows, keys, emb, settings, _embedder_info(embedder, settings), impostors, roles)
    report.update(data=str(data), bad_files=[f"{p}: {why}" for p, why in bad], files_embedded=n_new,
                  seconds_embedding=t_emb)
    save_model(out, info, arrays, report, cache)
    return info, report


def add_speakers(model_dir, data, embedder=None, progress=False, cache=None):
    """Enrol the new speakers of ``data`` into a saved model: only their files are embedded;
    everything is refitted on old + new embeddings with the model's settings (the result equals
    enrolling old + new from scratch with the same settings and impostor speakers)."""
    model = EnrolmentModel(model_dir)
    embedder = embedder or model.embedder()
    if embedder.fingerprint() != model.info["embedder"]["fingerprint"]:
        raise DataError(model_dir, "the embedder is not the one this enrolment was made with: enrol again")
    settings = model.settings
    new_rows, bad = list_rows(data, embedder.min_seconds, progress)
    old_rows = model.rows()
    known = {u.spk_id for u in old_rows}
    clash = sorted({u.spk_id for u in new_rows} & known)
    if clash:
        raise DataError(data, f"speaker(s) already in the enrolment: {', '.join(clash[:5])} (add only new speakers, "
                              "or enrol the whole set again)")
    keys_old, emb_old = [str(k) for k in model.arrays["utt_keys"]], model.arrays["embeddings"]
    keys_new, emb_new, n_new = cached_embed(embedder, new_rows, settings, [Path(cache)] if cache else [], progress)
    if emb_new.shape[1] != emb_old.shape[1]:
        raise DataError(model_dir, f"new embeddings have {emb_new.shape[1]} dimensions, the enrolment {emb_old.shape[1]}")
    all_rows, all_keys = old_rows + new_rows, keys_old + keys_new
    order = sorted(range(len(all_rows)), key=lambda i: (all_rows[i].spk_id, all_rows[i].ID))
    rows = [all_rows[i] for i in order]
    keys = [all_keys[i] for i in order]
    emb = np.concatenate([emb_old, emb_new])[order]
    impostors = list(settings.impostors or [])
    # the old speakers keep their saved split (made before any long-tail sub-sampling); the new ones
    # are split as enrol splits them (per speaker, seeded by seed and speaker alone)
    roles_all = [str(r) for r in model.arrays["utt_roles"]] + assign_roles(new_rows, settings, set(impostors))[0]
    roles = [roles_all[i] for i in order]
    info, arrays, report = build(rows, keys, emb, settings, _embedder_info(embedder, settings), impostors, roles)
    report.update(data=str(data), bad_files=[f"{p}: {why}" for p, why in bad],
                  files_embedded=n_new, added_speakers=sorted({u.spk_id for u in new_rows}))
    save_model(model_dir, info, arrays, report, cache)
    return info, report
