"""Stage 2 of decoupled training: cache embeddings once, then fit cRT, tau-norm, LWS, NCM."""

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ltspk.atomic import write_json
from ltspk.data.manifest import read_manifest
from ltspk.decoupled import choose_tau, crt, lws, ncm, tau_normalized_logits
from ltspk.embeddings_io import load_embeddings, save_embeddings
from ltspk.evaluate import embed_manifest
from ltspk.metrics import shot_group_accuracy

log = logging.getLogger(__name__)


def cached_embeddings(brain, csv_path, cache, h, progress=True):
    """Embeddings of every utterance of a manifest, extracted once and reused while the
    manifest's utterance IDs are unchanged."""
    rows = read_manifest(csv_path)
    if cache.is_file():
        ids, emb = load_embeddings(cache)
        if sorted(ids) == sorted(u.ID for u in rows):
            return ids, emb, rows
        log.warning("%s does not match %s any more: extracting again", cache, csv_path)
    ids, emb = embed_manifest(brain, csv_path, h, progress)
    save_embeddings(cache, ids, emb)
    return ids, emb, rows


def _labels(ids, rows, encoder):
    spk = {u.ID: u.spk_id for u in rows}
    return np.array([encoder.lab2ind[spk[i]] for i in ids]), [spk[i] for i in ids]


def run_stage2(exp, out=None, progress=True):
    h, brain = exp.hparams, exp.brain
    out = Path(out or h["output_folder"])
    st = out / "stage2"
    prepared = exp.prepared
    head = brain.head.eval()
    n = len(exp.class_counts)
    t0 = time.perf_counter()
    tr_ids, x_tr, tr_rows = cached_embeddings(brain, prepared / "train.csv", st / "train_embeddings.npz", h, progress)
    te_ids, x_te, te_rows = cached_embeddings(brain, prepared / "spkid_test.csv", st / "spkid_test_embeddings.npz",
                                              h, progress)
    valid_csv = prepared / "spkid_valid.csv"
    has_valid = valid_csv.is_file() and read_manifest(valid_csv)
    if has_valid:
        va_ids, x_va, va_rows = cached_embeddings(brain, valid_csv, st / "spkid_valid_embeddings.npz", h, progress)
    t_extract = time.perf_counter() - t0
    y_tr, _ = _labels(tr_ids, tr_rows, exp.encoder)
    y_te, te_spk = _labels(te_ids, te_rows, exp.encoder)
    groups = np.array([exp.counts_info["shot_groups"][s] for s in te_spk])
    if has_valid:
        y_va, _ = _labels(va_ids, va_rows, exp.encoder)
        val_source = "spkid_valid.csv"
    else:
        x_va, y_va, val_source = x_tr, y_tr, "training embeddings (no spkid_valid.csv: prepare with --valid N)"

    weight = head.linear.weight if hasattr(head, "linear") else head.weight
    weight = weight.detach().cpu()
    dev = next(head.parameters()).device
    results, timings = {}, {}

    def acc(pred):
        return shot_group_accuracy(np.asarray(pred), y_te, groups)

    t = time.perf_counter()
    f = crt(x_tr, y_tr, n, **h.get("crt_options", {}))
    results["cRT"] = acc(f(x_te).argmax(1).numpy())
    timings["cRT"] = time.perf_counter() - t

    t = time.perf_counter()
    best_tau, tau_scores = choose_tau(weight, x_va, y_va)
    results[f"tau-norm tau={best_tau:g}"] = acc(tau_normalized_logits(weight, x_te, best_tau).argmax(1).numpy())
    timings["tau-norm"] = time.perf_counter() - t

    t = time.perf_counter()
    with torch.inference_mode():
        z_tr = head.inference_logits(torch.from_numpy(x_tr).to(dev)).cpu().numpy()
        z_te = head.inference_logits(torch.from_numpy(x_te).to(dev)).cpu().numpy()
    s = lws(z_tr, y_tr, **h.get("lws_options", {}))
    results["LWS"] = acc((z_te * s).argmax(1))
    timings["LWS"] = time.perf_counter() - t

    t = time.perf_counter()
    results["NCM"] = acc(ncm(x_tr, y_tr, n)(x_te).argmax(1).numpy())
    timings["NCM"] = time.perf_counter() - t

    summary = {"speaker_id": results, "tau_validation": {"source": val_source, "accuracy_by_tau": tau_scores,
                                                          "chosen": best_tau},
               "seconds": {"embedding_extraction_or_cache": t_extract, **timings},
               "n_train_embeddings": len(tr_ids)}
    write_json(st / "results.json", summary)
    res_path = out / "results.json"
    if res_path.is_file():
        merged = json.loads(res_path.read_text())
        sid = merged.get("speaker_id") or {}
        sid = {k: v for k, v in sid.items() if not k.startswith(("cRT", "tau-norm", "LWS", "NCM"))}
        sid.update(results)
        merged["speaker_id"] = sid
        merged["stage2"] = {k: summary[k] for k in ("tau_validation", "seconds")}
        write_json(res_path, merged)
    return summary
