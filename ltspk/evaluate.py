"""Evaluation of a trained experiment: verification (EER, minDCF) and speaker ID by shot group."""

import json
import logging
from pathlib import Path

import numpy as np
import torch

from ltspk.atomic import write_json, write_text
from ltspk.data.manifest import read_manifest
from ltspk.data.pipeline import full_pipeline, load_dataset
from ltspk.data.trials import read_trials
from ltspk.embeddings_io import save_arrays, save_embeddings
from ltspk.errors import DataError
from ltspk.heads.causal_norm import CausalNormHead
from ltspk.metrics import shot_group_accuracy, verification_metrics
from ltspk.report import verification_variants
from ltspk.scoring import EmbeddingTable, as_norm, cosine_trial_scores, speaker_means

log = logging.getLogger(__name__)


def embed_manifest(brain, csv_path, h, progress, rows=None):
    ds = load_dataset(csv_path, full_pipeline(h["sample_rate"], h.get("eval_max_seconds")), rows=rows)
    ds = ds.filtered_sorted(sort_key="duration")
    return brain.embeddings(ds, batch_size=h.get("eval_batch_size", 16), progress=progress)


def enrol_by_mean(table, enrol_map):
    """Enrolment embeddings as the mean of their L2-normalised source utterances."""
    ids, rows = list(table.ids), [table.matrix]
    x = table.normalized()
    for enrol, sources in enrol_map.items():
        rows.append(x[table.rows(sources, "enrol_map.json")].mean(0, keepdims=True))
        ids.append(enrol)
    keep = {}
    for i, u in enumerate(ids):
        keep[u] = i  # a mean-enrolment replaces an audio-enrolment of the same ID
    order = sorted(keep.values())
    return EmbeddingTable([ids[i] for i in order], np.concatenate(rows)[order])


def verification(brain, prepared, out, h, progress=True):
    trials_path = prepared / "trials.txt"
    if not trials_path.is_file():
        return None
    ids, emb = embed_manifest(brain, prepared / "verification.csv", h, progress)
    save_embeddings(out / "embeddings_verification.npz", ids, emb)
    table = EmbeddingTable(ids, emb)
    protocol = "audio"
    map_path = prepared / "enrol_map.json"
    if h.get("enrol_protocol", "audio") == "mean" and map_path.is_file():
        table = enrol_by_mean(table, json.loads(map_path.read_text()))
        protocol = "mean"
    trials = read_trials(trials_path)
    enrol_ids, test_ids = [t.enrol for t in trials], [t.test for t in trials]
    labels = np.array([t.label for t in trials])
    p_targets = tuple(h.get("p_targets", (0.01, 0.05)))
    scores = cosine_trial_scores(table, enrol_ids, test_ids, source=trials_path)
    m = verification_metrics(scores, labels, p_targets)
    save_arrays(out / "scores_verification.npz", scores=scores, labels=labels)
    m["enrol_protocol"] = protocol
    m["scoring"] = "cosine"
    head = brain.head
    if isinstance(head, CausalNormHead) and h.get("tde_embedding_alphas"):
        m["tde_embeddings"] = {}
        for alpha in h["tde_embedding_alphas"]:
            tde_table = EmbeddingTable(table.ids, tde_embeddings(head, table.matrix, alpha))
            s = cosine_trial_scores(tde_table, enrol_ids, test_ids, source=trials_path)
            m["tde_embeddings"][f"{alpha:g}"] = verification_metrics(s, labels, p_targets)
    if h.get("score_norm") == "asnorm":
        cohort = cohort_embeddings(brain, prepared / "train.csv", h, progress)
        normed = as_norm(table, enrol_ids, test_ids, cohort, h.get("asnorm_top_k", 300), source=trials_path)
        m["asnorm"] = verification_metrics(normed, labels, p_targets)
        m["asnorm"].update(top_k=h.get("asnorm_top_k", 300), cohort_speakers=int(cohort.shape[0]))
    return m


def tde_embeddings(head, matrix, alpha):
    """TDE for verification (to be measured, not assumed): per CausalNorm head, remove alpha
    times the projection on the training-mean direction, x_k/||x_k|| - alpha cos_k d_k."""
    with torch.inference_mode():
        x = torch.from_numpy(np.asarray(matrix, dtype=np.float32)).to(head.embed_mean.device)
        return head.debias(x, alpha).reshape(x.shape[0], -1).cpu().numpy()


def cohort_embeddings(brain, train_csv, h, progress):
    """AS-norm cohort: speaker-mean embeddings of training speakers, from up to
    ``asnorm_cohort_utts`` utterances each (first by ID, so the cohort is reproducible)."""
    per = h.get("asnorm_cohort_utts", 3)
    chosen, taken = [], {}
    for u in sorted(read_manifest(train_csv), key=lambda u: u.ID):
        if taken.get(u.spk_id, 0) < per:
            taken[u.spk_id] = taken.get(u.spk_id, 0) + 1
            chosen.append(u)
    ids, emb = embed_manifest(brain, train_csv, h, progress, rows=chosen)
    spk_of = {u.ID: u.spk_id for u in chosen}
    return speaker_means(EmbeddingTable(ids, emb), spk_of)[1]


def speaker_id(brain, encoder, counts_info, prepared, out, h, progress=True):
    test_csv = prepared / "spkid_test.csv"
    rows = {u.ID: u.spk_id for u in read_manifest(test_csv)}
    if not rows:
        return None
    unknown = sorted({s for s in rows.values() if s not in encoder.lab2ind})
    if unknown:
        raise DataError(test_csv, f"label encoder mismatch: {len(unknown)} test speaker(s) unknown to the "
                                  f"trained model's label encoder (e.g. {unknown[:3]})")
    ids, emb = embed_manifest(brain, test_csv, h, progress)
    save_embeddings(out / "embeddings_spkid_test.npz", ids, emb)
    targets = np.array([encoder.lab2ind[rows[i]] for i in ids])
    groups = np.array([counts_info["shot_groups"][rows[i]] for i in ids])
    head = brain.head
    head.eval()
    x = torch.from_numpy(emb).to(next(head.parameters()).device)
    results, predictions = {}, {}

    def score(name, **kw):
        with torch.inference_mode():
            pred = head.inference_logits(x, **kw).argmax(1).cpu().numpy()
        results[name] = shot_group_accuracy(pred, targets, groups)
        predictions[name] = pred

    score("plain", mode="plain")
    for tau in h.get("posthoc_la_taus", [1.0]):
        score(f"posthoc_la tau={tau:g}", mode="posthoc_la", tau=tau)
    if isinstance(head, CausalNormHead):
        for alpha in h.get("tde_alphas", [head.alpha]):
            score(f"tde alpha={alpha:g}", mode="tde", alpha=alpha)
        results["tde_mean_cos"] = head.mean_alpha_cos(x, 1.0)
    speakers = np.array([rows[i] for i in ids])
    save_arrays(out / "spkid_predictions.npz", modes=np.array(list(predictions)), speakers=speakers,
                targets=targets, predictions=np.stack(list(predictions.values())))
    return results


def evaluate(experiment, out=None, progress=True):
    """Run every evaluation, write ``results.json`` and ``results.md``; return the results."""
    h = experiment.hparams
    out = Path(out or h["output_folder"])
    prepared = experiment.prepared
    brain = experiment.brain
    corpus = h["corpus"]
    results = {
        "experiment": h.get("experiment", ""),
        "corpus": corpus,
        "synthetic": corpus == "synthetic",
        "head": type(brain.head).__name__,
        "loss_logit_adjustment_tau": brain.head.la_tau,
        "sampler": h.get("sampler") or "shuffle",
        "epochs": h["number_of_epochs"],
        "shot_thresholds": experiment.counts_info["shot_thresholds"],
        "shot_group_sizes": experiment.counts_info.get("shot_group_sizes"),
        "verification": verification(brain, prepared, out, h, progress),
        "speaker_id": speaker_id(brain, experiment.encoder, experiment.counts_info, prepared, out, h, progress),
    }
    write_json(out / "results.json", results)
    write_text(out / "results.md", results_table(results))
    return results


def _fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def results_table(r):
    tag = " (SYNTHETIC corpus)" if r.get("synthetic") else ""
    lines = [f"## {r['experiment']}: {r['head']} on {r['corpus']}{tag}", ""]
    v = r.get("verification")
    if v:
        lines += ["| trials | scoring | EER % | minDCF 0.01 | minDCF 0.05 | enrolment |", "|---:|---|---:|---:|---:|---|"]
        for name, m in verification_variants(v):
            lines.append(f"| {m['n_trials']} | {name} | {_fmt(m['eer'])} | {_fmt(m.get('min_dcf_0.01'), 3)} | "
                         f"{_fmt(m.get('min_dcf_0.05'), 3)} | {v['enrol_protocol']} |")
        lines.append("")
    s = r.get("speaker_id")
    if s:
        th = r["shot_thresholds"]
        lines += [f"Speaker-ID top-1 accuracy % (many: {th['many']}, medium: {th['medium']}, few: {th['few']} "
                  "training utterances)", "",
                  "| inference | many | medium | few | overall |", "|---|---:|---:|---:|---:|"]
        for name, a in s.items():
            if isinstance(a, dict):
                lines.append(f"| {name} | {_fmt(a['many'])} | {_fmt(a['medium'])} | {_fmt(a['few'])} | {_fmt(a['overall'])} |")
    return "\n".join(lines) + "\n"
