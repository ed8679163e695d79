"""Decoupled stage 2 on a trained run: re-fit the classifier on frozen embeddings.

The algorithms (cRT, tau-normalisation, LWS, NCM) are in ``ltspk.longtail.decoupled``; this module
runs them on a trained run's embeddings (extracted once, cached under ``<run>/cache/`` keyed on
the model and manifest they came from), chooses tau-norm's power on ``spkid_valid``, and
replaces ``<run>/stage2/`` whole with its records and predictions, then rebuilds the run's
``results.json`` / ``results.md``.
"""

import logging
import time
from pathlib import Path

import numpy as np
import torch

from ltspk.data.manifest import read_manifest
from ltspk.embedding.cache import ManifestEmbeddings, labels_of
from ltspk.embedding.tables import save_arrays
from ltspk.evaluation.evaluate import SpeakerIdSplit, has_rows, require_validation
from ltspk.evaluation.records import Record, rebuild_results, stage_document, sweep_records
from ltspk.longtail.decoupled import TAU_NORM, crt, lws, ncm, tau_norm_neutral, tau_normalized_logits
from ltspk.runtime.atomic import staged_folder, write_json
from ltspk.runtime.errors import DataError

log = logging.getLogger(__name__)
STAGE = "stage2"


def run_stage2(exp, out=None, progress=True):
    h, brain, prepared = exp.hparams, exp.brain, exp.prepared
    run_dir = Path(out or h["output_folder"])
    head = brain.head.eval()
    if not has_rows(prepared / "spkid_test.csv"):
        raise DataError(prepared / "spkid_test.csv", "has no utterances: stage 2 needs a speaker-ID test split")
    require_validation(prepared, [TAU_NORM.param], "stage 2 (tau-norm)")
    n = len(exp.class_counts)
    embeddings = ManifestEmbeddings(exp.embedder(), h, run_dir / "cache", progress and exp.shows_progress)
    model_hash, shot, device = embeddings.fingerprint, exp.counts_info["shot_groups"], head.log_prior.device
    t0 = time.perf_counter()
    tr_ids, x_tr = embeddings.cached(prepared / "train.csv", "train.npz")
    y_tr, _ = labels_of(tr_ids, read_manifest(prepared / "train.csv"), exp.encoder, prepared / "train.csv")
    test = SpeakerIdSplit(embeddings, prepared / "spkid_test.csv", "spkid_test.npz", exp.encoder, shot, device)
    valid = SpeakerIdSplit(embeddings, prepared / "spkid_valid.csv", "spkid_valid.npz", exp.encoder, shot, device)
    timings = {"embedding_extraction_or_cache": time.perf_counter() - t0}
    weight = head.classifier_weight().detach().cpu()
    with torch.inference_mode():  # the feature the class weights apply to (the embedding for most heads)
        f_valid, f_test = (head.classifier_input(s.x).cpu().numpy() for s in (valid, test))
    opts = {"crt": dict(h.get("crt_options") or {}), "lws": dict(h.get("lws_options") or {})}
    predictions, records = {}, []

    def on_test(family, pred, **params):
        predictions[Record(STAGE, "speaker_id", family, "spkid_test", {}, params).key] = np.asarray(pred)
        return test.accuracy(np.asarray(pred))

    def on_valid(family, pred):  # what a choice between methods may look at: never the test split
        records.append(Record(STAGE, "speaker_id", family, "spkid_valid", valid.accuracy(np.asarray(pred)),
                              role="validation"))

    t = time.perf_counter()
    f = crt(x_tr, y_tr, n, **opts["crt"])
    records.append(Record(STAGE, "speaker_id", "cRT", "spkid_test", on_test("cRT", f(test.emb).argmax(1).numpy())))
    on_valid("cRT", f(valid.emb).argmax(1).numpy())
    timings["cRT"] = time.perf_counter() - t

    t = time.perf_counter()
    grid = [float(v) for v in h.get(TAU_NORM.hparam, TAU_NORM.grid)]
    recs, _ = sweep_records(
        STAGE, "tau_norm", TAU_NORM.param, grid,
        valid_metric=lambda p: valid.accuracy(tau_normalized_logits(weight, f_valid, p).argmax(1).numpy()),
        test_metrics=lambda p: on_test("tau_norm", tau_normalized_logits(weight, f_test, p).argmax(1).numpy(),
                                       **{TAU_NORM.param: p}),
        neutral=tau_norm_neutral(head))
    records += recs
    timings["tau_norm"] = time.perf_counter() - t

    t = time.perf_counter()
    dev = head.log_prior.device
    with torch.inference_mode():
        z_tr = head.inference_logits(torch.from_numpy(x_tr).to(dev)).cpu().numpy()
        z_te = head.inference_logits(test.x).cpu().numpy()
        z_va = head.inference_logits(valid.x).cpu().numpy()
    s = lws(z_tr, y_tr, **opts["lws"])
    records.append(Record(STAGE, "speaker_id", "LWS", "spkid_test", on_test("LWS", (z_te * s).argmax(1))))
    on_valid("LWS", (z_va * s).argmax(1))
    timings["LWS"] = time.perf_counter() - t

    t = time.perf_counter()
    centroids = ncm(x_tr, y_tr, n)
    records.append(Record(STAGE, "speaker_id", "NCM", "spkid_test", on_test("NCM", centroids(test.emb).argmax(1).numpy())))
    on_valid("NCM", centroids(valid.emb).argmax(1).numpy())
    timings["NCM"] = time.perf_counter() - t

    info = {"model_sha256": model_hash, "n_train_embeddings": len(tr_ids), "seconds": timings,
            "crt_options": opts["crt"], "lws_options": opts["lws"]}
    with staged_folder(run_dir / "stage2", clean=True) as tmp:
        save_arrays(tmp / "spkid_predictions.npz", modes=np.array(list(predictions)), speakers=test.speakers,
                    targets=test.targets, predictions=np.stack(list(predictions.values())))
        write_json(tmp / "records.json", stage_document(STAGE, records, info))
    rebuild_results(run_dir)
    return records, info
