"""Evaluation of a trained experiment: verification (EER, minDCF) and speaker ID by shot group.

Every tunable inference setting (post-hoc tau, TDE alpha, ...) is chosen on the ``spkid_valid``
split and reported on ``spkid_test`` at that choice; the other settings' test figures are kept
as labelled diagnostics. Outputs are built in a temporary folder and replace
``<run>/evaluation/`` whole (records, scores, predictions, embeddings), then ``results.json``
and ``results.md`` are rebuilt from every stage's records (``ltspk.evaluation.records``). A step that
fails (for example verification on a broken trial list) is recorded as failed and the other
steps' results are still written; the error is raised after that.
"""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from ltspk.data.manifest import read_manifest
from ltspk.data.trials import read_trials
from ltspk.embedding.cache import ManifestEmbeddings, labels_of
from ltspk.embedding.tables import save_arrays, save_embeddings
from ltspk.evaluation.metrics import shot_group_accuracy, verification_metrics
from ltspk.evaluation.records import Record, rebuild_results, stage_document, sweep_records
from ltspk.evaluation.scoring import EmbeddingTable, as_norm, cosine_trial_scores, l2_normalize, speaker_means
from ltspk.runtime.atomic import staged_folder, write_json
from ltspk.runtime.errors import DataError, LtspkError

log = logging.getLogger(__name__)
STAGE = "evaluate"


class EvaluationError(LtspkError):
    """One or more evaluation steps failed; the others' results were written."""


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


def tunable_grids(head, h):
    """{family: (Tunable, grid)} of the head's tunable inference families, grids from hparams."""
    out = {}
    for family, t in head.inference_families().items():
        grid = h.get(t.hparam, t.grid)
        if grid:
            out[family] = (t, [float(v) for v in grid])
    return out


def has_rows(csv_path):
    return Path(csv_path).is_file() and bool(read_manifest(csv_path))


def require_validation(prepared, params, what):
    """Tunable settings are chosen on spkid_valid only: refuse before any work when it is missing."""
    valid = Path(prepared) / "spkid_valid.csv"
    if params and not has_rows(valid):
        raise DataError(valid, f"{what} chooses {', '.join(params)} on a speaker-ID validation split, and this "
                               "preparation has none: prepare with --valid_per_speaker N "
                               "(train.py or recipes/prepare.py), or turn the sweeps off "
                               "(e.g. --posthoc_la_taus [] --tde_alphas [])")


def run_info(exp, model_hash):
    h, head = exp.hparams, exp.brain.head
    tau = head.la_tau
    return {
        "experiment": h.get("experiment", ""), "seed": h.get("seed"), "corpus": h["corpus"],
        "synthetic": h["corpus"] == "synthetic", "head": type(head).__name__,
        "head_label": type(head).__name__ + (f" + LA loss tau={tau:g}" if tau else ""),
        "loss_logit_adjustment_tau": tau, "loss": h.get("loss", "ce"), "sampler": h.get("sampler") or "shuffle",
        "epochs": h["number_of_epochs"], "optimizer": _name(h.get("opt_class")),
        "lr_schedule": _name(h.get("lr_annealing")), "shot_thresholds": exp.counts_info["shot_thresholds"],
        "shot_group_sizes": exp.counts_info.get("shot_group_sizes"),
        "imbalance_factor_target": (exp.counts_info.get("options") or {}).get("imbalance_factor"),
        "imbalance_factor": exp.counts_info.get("imbalance_factor"),
        # absolute: a run trained with a relative path and evaluated again from its folder names one corpus
        "data_folder": str(Path(h["data_folder"]).resolve()) if h.get("data_folder") else "",
        "holdout_by": (exp.counts_info.get("options") or {}).get("holdout_by", "utterance"),
        "model_sha256": model_hash, "head_settings": head.info(),
        "checkpoint": getattr(exp, "checkpoint_info", None),  # the checkpoint evaluated: epoch, step, mid-epoch
    }


def _name(obj):
    """The class name behind an hparams object or !name: partial (None when absent)."""
    if obj is None:
        return None
    target = getattr(obj, "func", obj)
    return getattr(target, "__name__", type(target).__name__)


def _trial_speakers(ids_needed, prepared):
    spk = {u.ID: u.spk_id for u in read_manifest(prepared / "verification.csv")}
    map_path = prepared / "enrol_map.json"
    if map_path.is_file():
        for enrol, sources in json.loads(map_path.read_text()).items():
            spk.setdefault(enrol, spk.get(sources[0], "?"))
    return np.array([spk.get(i, "?") for i in ids_needed])


def verification(embeddings, head, prepared, out, h):
    """Verification records (cosine scoring, the head's embedding variants, AS-norm)."""
    trials_path = prepared / "trials.txt"
    if not trials_path.is_file():
        return []
    ids, emb = embeddings.cached(prepared / "verification.csv", "verification.npz")
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
    save_arrays(out / "scores_verification.npz", scores=scores, labels=labels,
                enrol_speakers=_trial_speakers(enrol_ids, prepared), test_speakers=_trial_speakers(test_ids, prepared))
    records = [Record(STAGE, "verification", "cosine", "trials", {**verification_metrics(scores, labels, p_targets),
                                                                  "enrol_protocol": protocol})]
    for family, t in head.embedding_variants().items():
        for value in h.get(t.hparam, t.grid) or []:
            with torch.inference_mode():
                x = torch.from_numpy(np.asarray(table.matrix, dtype=np.float32)).to(head.log_prior.device)
                tx = head.transform_embeddings(family, x, **{t.param: float(value)}).cpu().numpy()
            s = cosine_trial_scores(EmbeddingTable(table.ids, tx), enrol_ids, test_ids, source=trials_path)
            records.append(Record(STAGE, "verification", family, "trials", verification_metrics(s, labels, p_targets),
                                  {t.param: float(value)}, "diagnostic"))
    if h.get("score_norm") == "asnorm":
        cohort = cohort_embeddings(embeddings, prepared / "train.csv", h)
        top_k = h.get("asnorm_top_k", 300)
        normed = as_norm(table, enrol_ids, test_ids, cohort, top_k, source=trials_path)
        records.append(Record(STAGE, "verification", "asnorm", "trials",
                              {**verification_metrics(normed, labels, p_targets), "cohort_speakers": int(cohort.shape[0])},
                              {"top_k": float(top_k)}))
    return records


def tde_embeddings(head, matrix, alpha):
    """TDE for verification (to be measured, not assumed): per CausalNorm head, remove alpha
    times the projection on the training-mean direction, x_k/||x_k|| - alpha cos_k d_k."""
    with torch.inference_mode():
        x = torch.from_numpy(np.asarray(matrix, dtype=np.float32)).to(head.log_prior.device)
        return head.transform_embeddings("tde_embeddings", x, tde_alpha=alpha).cpu().numpy()


def cohort_embeddings(embeddings, train_csv, h):
    """AS-norm cohort: speaker-mean embeddings of training speakers, from up to
    ``asnorm_cohort_utts`` utterances each (first by ID, so the cohort is reproducible)."""
    per = h.get("asnorm_cohort_utts", 3)
    chosen, taken = [], {}
    for u in sorted(read_manifest(train_csv), key=lambda u: u.ID):
        if taken.get(u.spk_id, 0) < per:
            taken[u.spk_id] = taken.get(u.spk_id, 0) + 1
            chosen.append(u)
    ids, emb = embeddings.of_rows(train_csv, chosen)
    spk_of = {u.ID: u.spk_id for u in chosen}
    return speaker_means(EmbeddingTable(ids, emb), spk_of)[1]


def distribution(values, groups):
    """Mean and quartiles of ``values`` per shot group and overall."""
    out = {}
    for g in ("many", "medium", "few", "overall"):
        v = values if g == "overall" else values[groups == g]
        if len(v):
            q25, med, q75 = np.percentile(v, [25, 50, 75])
            out[g] = {"mean": float(v.mean()), "q25": float(q25), "median": float(med), "q75": float(q75),
                      "n": int(len(v))}
    return out


def diagnostic_records(head, split, name):
    """The head's per-embedding diagnostics (e.g. CausalNorm's cos(x, d)) by shot group, and on
    validation the settings the official code's rule of thumb would pick."""
    with torch.inference_mode():
        diags = {k: v.float().cpu().numpy() for k, v in head.diagnostics(split.x).items()}
    records = []
    for family, values in diags.items():
        metrics = distribution(values, split.groups)
        if name == "spkid_valid":
            metrics["suggested"] = head.suggested_settings({family: float(values.mean())})
        records.append(Record(STAGE, "diagnostic", family, name, metrics, role="diagnostic"))
    return records


def validation_verification(split, h):
    """A verification figure to choose on without the test trials: cosine EER and minDCF over
    every pair of the validation recordings (training speakers' held-out recordings, cross-session
    where sessions are known), as a ``validation`` record."""
    x = l2_normalize(np.asarray(split.emb, dtype=np.float64))
    i, j = np.triu_indices(len(x), k=1)
    scores = np.einsum("ij,ij->i", x[i], x[j])
    labels = (split.speakers[i] == split.speakers[j]).astype(int)
    if not labels.any() or labels.all():
        return Record(STAGE, "verification", "cosine", "spkid_valid", {"n_trials": int(len(labels))}, role="validation")
    metrics = verification_metrics(scores, labels, tuple(h.get("p_targets", (0.01, 0.05))))
    return Record(STAGE, "verification", "cosine", "spkid_valid", metrics, role="validation")


class SpeakerIdSplit:
    """Embeddings of one speaker-ID split with their classes and shot groups."""

    def __init__(self, embeddings, csv_path, cache_name, encoder, shot_groups, device):
        rows = read_manifest(csv_path)
        self.ids, emb = embeddings.cached(csv_path, cache_name)
        self.targets, self.speakers = labels_of(self.ids, rows, encoder, csv_path)
        self.groups = np.array([shot_groups[s] for s in self.speakers])
        self.x = torch.from_numpy(emb).to(device)
        self.emb = emb

    def predict(self, head, family, **params):
        with torch.inference_mode():
            return head.inference_logits(self.x, family, **params).argmax(1).cpu().numpy()

    def accuracy(self, pred):
        return shot_group_accuracy(pred, self.targets, self.groups)


def speaker_id(exp, embeddings, out):
    """Speaker-ID records: plain, and every tunable family chosen on spkid_valid."""
    h, prepared = exp.hparams, exp.prepared
    test_csv = prepared / "spkid_test.csv"
    if not has_rows(test_csv):
        return []
    head = exp.brain.head.eval()
    shot, device = exp.counts_info["shot_groups"], head.log_prior.device
    test = SpeakerIdSplit(embeddings, test_csv, "spkid_test.npz", exp.encoder, shot, device)
    save_embeddings(out / "embeddings_spkid_test.npz", test.ids, test.emb)
    predictions = {}

    def on_test(family, **params):
        pred = test.predict(head, family, **params)
        rec_key = Record(STAGE, "speaker_id", family, "spkid_test", {}, params).key
        predictions[rec_key] = pred
        return test.accuracy(pred)

    records = [Record(STAGE, "speaker_id", "plain", "spkid_test", on_test("plain"))]
    grids = tunable_grids(head, h)
    valid = None
    if has_rows(prepared / "spkid_valid.csv"):
        valid = SpeakerIdSplit(embeddings, prepared / "spkid_valid.csv", "spkid_valid.npz", exp.encoder, shot, device)
        records += [Record(STAGE, "speaker_id", "plain", "spkid_valid", valid.accuracy(valid.predict(head, "plain")),
                           role="validation"),
                    validation_verification(valid, h)]
    if grids:
        for family, (t, grid) in grids.items():
            recs, _ = sweep_records(
                STAGE, family, t.param, grid,
                valid_metric=lambda v, f=family, p=t.param: valid.accuracy(valid.predict(head, f, **{p: float(v)})),
                test_metrics=lambda v, f=family, p=t.param: on_test(f, **{p: float(v)}),
                neutral=t.neutral)
            records += recs
        records += diagnostic_records(head, valid, "spkid_valid")
    records += diagnostic_records(head, test, "spkid_test")
    save_arrays(out / "spkid_predictions.npz", modes=np.array(list(predictions)), speakers=test.speakers,
                targets=test.targets, predictions=np.stack(list(predictions.values())))
    return records


def evaluate(experiment, out=None, progress=True):
    """Run every evaluation step, replace ``<run>/evaluation/`` whole, rebuild ``results.json``
    and ``results.md``; return the run's collected results (``ltspk.evaluation.records.collect``)."""
    h, brain, prepared = experiment.hparams, experiment.brain, experiment.prepared
    run_dir = Path(out or h["output_folder"])
    require_validation(prepared, [t.param for t, _ in tunable_grids(brain.head, h).values()], "evaluation")
    embeddings = ManifestEmbeddings(experiment.embedder(), h, run_dir / "cache", progress and experiment.shows_progress)
    model_hash = embeddings.fingerprint
    records, failures = [], {}
    with staged_folder(run_dir / "evaluation", clean=True) as tmp:
        steps = (("verification", lambda: verification(embeddings, brain.head, prepared, tmp, h)),
                 ("speaker_id", lambda: speaker_id(experiment, embeddings, tmp)))
        for name, step in steps:
            try:
                records += step()
            except (LtspkError, ValueError) as e:
                log.error("evaluation step %s failed: %s", name, e)
                failures[name] = str(e)
        counts = prepared / "counts.json"
        if counts.is_file():
            shutil.copyfile(counts, tmp / "counts.json")
        write_json(tmp / "records.json", stage_document(STAGE, records, run_info(experiment, model_hash), failures))
    res = rebuild_results(run_dir)
    log.info("results of %s: %s (every record: %s)", run_dir, run_dir / "results.json", run_dir / "results.md")
    if failures:
        raise EvaluationError("evaluation step(s) failed: " + "; ".join(f"{k}: {v}" for k, v in failures.items())
                              + f" (the other results are in {run_dir / 'results.json'})")
    return res
