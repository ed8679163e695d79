"""Enrol a long-tailed speaker set with any embedder; identify, reject unknown speakers, calibrate.

Pipeline (``enrol``; ``add_speakers`` runs the same on old + new speakers):

1. List the data: a speaker-folder corpus (``ltspk.data.folder``), a manifest CSV, or a prepared
   corpus folder (its train / spkid_valid / spkid_test manifests together). Unreadable files and
   files shorter than the embedder's minimum are listed and left out.
2. Embed every file (resampled to the embedder's rate, length-sorted batches), reusing cached
   embeddings keyed per file (path, segment, size, mtime) under a source key (embedder
   fingerprint, sample rate, ``max_seconds``, ``batch_size``): the model folder's own
   ``arrays.npz``, and ``--cache FILE`` when given.
3. Split per speaker, with a generator seeded by (seed, speaker) so one speaker's split never
   depends on the others: ``test_per_speaker`` test and ``valid_per_speaker`` validation
   recordings; the rest (the natural count, never capped) is enrolled. A speaker with fewer
   than test + valid + 1 recordings is enrolled whole and not evaluated (listed). Impostor
   speakers (``impostors``: a number, a fraction or names) are never enrolled; sorted by a
   seeded hash, alternate ones serve validation (threshold choice) and test (open-set figures).
   ``imbalance_factor`` then sub-samples the enrolled recordings only to an exponential long tail
   (``ltspk.data.longtail``; held-out and impostor recordings are all kept), as ``recipes/prepare.py``
   does for training: a balanced test, a long-tailed enrolment.
   Shot groups come from the enrolled counts (``ShotThresholds``, default > 100 / < 20, or quantiles).
4. Fit on the enrolled embeddings, centred on their mean (``FAMILIES``), every setting chosen on
   validation accuracy (ties: the least adjustment): ``linear`` (softmax regression, instance
   sampling, trained to convergence: ``ENROL_LINEAR``), ``NCM``
   (cosine to centred class means, ``ltspk.decoupled.ncm``), ``posthoc_la`` (tau), ``la_loss``
   (tau), ``cRT`` (class-balanced re-training, as ``ltspk.decoupled.crt``), ``tau_norm``
   (power, on ``linear``'s weights), ``LWS`` (``ltspk.decoupled.lws`` on ``linear``). Each is
   stored as logits = l2n(x - mu) W^T + b.
5. Calibrate each method by temperature scaling (NLL on validation, scipy); choose its
   rejection score (``prob``: top calibrated probability, ``score``: top logit) by validation
   OSCR area, and the threshold for ``target_far`` on validation impostor probes. Without
   impostor speakers, impostor probes are simulated by leaving each probe's own speaker out
   (labelled "simulated" in the report). The deployed method is the best on validation
   accuracy (or ``method``).
6. Report on the test split: top-1 accuracy by shot group, open-set DIR at fixed FARs and OSCR
   area by shot group, and verification calibration (utterance vs enrolled-speaker cosine,
   logistic calibration fitted on validation trials): EER, minDCF, actDCF, Cllr, min Cllr.

The model folder (written whole through ``ltspk.atomic.staged_folder``) holds ``model.json``
(settings, speakers, embedder, chosen settings, calibration, thresholds), ``arrays.npz``
(embeddings and per-method weights; read with ``allow_pickle=False``) and ``report.json`` /
``report.md``. No pickle anywhere.
"""

import hashlib
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ltspk.atomic import read_json, staged_folder, write_json, write_text
from ltspk.calibration import LogisticCalibration, calibrated_metrics
from ltspk.data.folder import compile_session_pattern, id_session
from ltspk.data.longtail import (
    AUTO,
    HOLDOUT_BY,
    SHOT_GROUPS,
    ShotThresholds,
    cross_session,
    hold_out_sessions,
    longtail_subsample,
    session_blocks,
    shot_groups,
)
from ltspk.data.manifest import Utterance, read_manifest, speaker_counts
from ltspk.decoupled import TAU_NORM, fit_linear, lws, ncm_centroids, tau_normalized_logits
from ltspk.embeddings_io import save_arrays
from ltspk.errors import DataError
from ltspk.heads.base import POSTHOC_LA, Tunable, log_priors
from ltspk.metrics import shot_group_accuracy
from ltspk.openset import (
    far_at_threshold,
    far_threshold,
    min_impostor_probes,
    openset_report,
    oscr_auc,
    threshold_caution,
)
from ltspk.records import choose_on_validation

log = logging.getLogger(__name__)
FORMAT, VERSION = "ltspk-enrolment", 1
FAMILIES = ("linear", "NCM", "posthoc_la", "la_loss", "cRT", "tau_norm", "LWS")  # ties: earlier wins
LA_LOSS = Tunable("la_tau", "la_taus", (0.0, 0.5, 1.0, 1.5, 2.0))
REJECT_BY = ("prob", "score")
REJECT_LABEL = {"prob": "calibrated probability", "score": "logit (cosine for NCM)"}


@dataclass
class EnrolSettings:
    test_per_speaker: int = 2
    valid_per_speaker: int = 2
    impostors: object = None  # None, a number >= 2, a fraction in (0, 1), or a list of speaker names
    many_above: float | str = "auto"  # or "auto": the tertiles of the enrolled counts
    few_below: float | str = "auto"
    quantiles: list | None = None  # [low, high] instead of many_above / few_below
    holdout_by: str = "session"  # test / validation recordings from sessions never enrolled, where known; or utterance
    session_pattern: str | None = None  # regex with (?P<session>...) on file names; else the folder after the speaker
    imbalance_factor: float | None = None
    target_far: float = 0.05
    fars: list = field(default_factory=lambda: [0.01, 0.05, 0.1])
    method: str = "auto"  # auto (best on validation) or one of FAMILIES
    reject_by: str = "auto"  # auto (best validation OSCR), prob or score
    max_seconds: float | None = None
    batch_size: int = 1
    seed: int = 0
    linear_options: dict = field(default_factory=dict)  # epochs, lr, batch_size, weight_decay, min_steps
    lws_options: dict = field(default_factory=dict)

    def check(self):
        if self.valid_per_speaker < 1:
            raise DataError("valid_per_speaker", "every setting is chosen on validation recordings: need >= 1")
        if self.test_per_speaker < 0:
            raise DataError("test_per_speaker", "must be >= 0")
        if self.method not in ("auto", *FAMILIES):
            raise DataError("method", f"{self.method!r}: choose auto or one of {', '.join(FAMILIES)}")
        if self.reject_by not in ("auto", *REJECT_BY):
            raise DataError("reject_by", f"{self.reject_by!r}: choose auto, prob or score")
        if not 0 < self.target_far < 1:
            raise DataError("target_far", f"must be in (0, 1), got {self.target_far}")
        if self.batch_size < 1:
            raise DataError("batch_size", "must be >= 1")
        if self.holdout_by not in HOLDOUT_BY:
            raise DataError("holdout_by", f"{self.holdout_by!r}: choose {' or '.join(HOLDOUT_BY)}")
        for key in ("many_above", "few_below"):
            v = getattr(self, key)
            if v != AUTO and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise DataError(key, f"must be a number or 'auto', got {v!r}")
        compile_session_pattern(self.session_pattern)
        return self


# ---------------------------------------------------------------------------------------- data


def list_rows(source, min_seconds=0.0, progress=False):
    """(rows sorted by speaker then ID, bad files [(path, why)]) of a speaker folder, a manifest
    CSV, or a prepared corpus folder."""
    from ltspk.data.audio import probe_many
    from ltspk.data.folder import list_speaker_folders

    p, bad = Path(source), []
    if p.is_file() and p.suffix.lower() == ".csv":
        rows = read_manifest(p)
    elif p.is_dir() and (p / "train.csv").is_file() and (p / "counts.json").is_file():
        rows, seen = [], set()
        for name in ("train.csv", "spkid_valid.csv", "spkid_test.csv"):
            if (p / name).is_file():
                rows += [u for u in read_manifest(p / name) if u.ID not in seen and not seen.add(u.ID)]
    elif p.is_dir():
        entries, _, _ = list_speaker_folders(p)
        infos, bad = probe_many([e.path for e in entries], 4, progress=progress, desc="probing audio")
        rows = [Utterance(e.id, infos[e.path].duration, os.path.realpath(e.path), 0, infos[e.path].frames, e.spk_id)
                for e in entries if e.path in infos]
    else:
        raise DataError(source, "data not found: give a speaker-folder corpus (DIR/<speaker>/<files>), a manifest "
                                "CSV (ID,duration,wav,start,stop,spk_id) or a prepared corpus folder")
    short = [u for u in rows if u.duration < min_seconds]
    bad += [(u.wav, f"{u.duration:.3f} s: shorter than the embedder's minimum {min_seconds:g} s") for u in short]
    rows = [u for u in rows if u.duration >= min_seconds]
    for path, why in bad[:20]:
        log.warning("left out %s: %s", path, why)
    if not rows:
        raise DataError(source, "no usable audio")
    return sorted(rows, key=lambda u: (u.spk_id, u.ID)), bad


def file_key(u):
    """What a cached embedding of one file was made from: path, segment, size, modification time."""
    path = os.path.realpath(u.wav)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(path, "audio file not found") from None
    return f"{path}|{u.start}|{u.stop}|{st.st_size}|{st.st_mtime_ns}"


# torch runs conv1d (the resampler's) on oneDNN when the padded input holds more than 20,480 samples
# and on its native im2col + GEMM kernel below that; the two round differently (1 ulp here and there).
# A read never stops short of this many frames, so a cut file is resampled by the same kernel as
# the whole segment (a shorter segment is read whole).
MIN_READ_FRAMES = 1 << 15


def frames_to_read(max_seconds, sr, target_sr):
    """Native-rate frames (from the segment's start) enough for the first ``max_seconds`` at
    ``target_sr`` to resample to the same samples as from the whole segment. torchaudio's sinc
    resampler (``lowpass_filter_width`` 6, ``rolloff`` 0.99) computes output block k
    (``target_sr / g`` samples, g = gcd) from input frames [k sr/g - width, (k + 1) sr/g + width)
    with width = ceil(6 (sr/g) / (0.99 min(sr, target_sr)/g)): read the blocks needed, one more
    and twice that width, and at least ``MIN_READ_FRAMES``."""
    g = math.gcd(int(sr), int(target_sr))
    block_in, block_out = int(sr) // g, int(target_sr) // g
    blocks = -(-int(max_seconds * target_sr) // block_out)
    width = math.ceil(6 * block_in / (0.99 * min(block_in, block_out)))
    return max(MIN_READ_FRAMES, (blocks + 1) * block_in + 2 * width)


def load_waveform(path, embedder, start=0, stop=None, max_seconds=None):
    """Samples [start, stop) (native rate) of one file as a 1-D tensor at the embedder's rate
    (resampled), cut to its first ``max_seconds`` after resampling; only the frames that cut needs
    are read (``frames_to_read``), so a long file is not read whole. Too-short audio is an error
    naming the file."""
    from ltspk.data.audio import read_segment, to_tensor

    def window(sr):
        length = -1 if stop is None else max(0, stop - start)
        if max_seconds:
            need = frames_to_read(max_seconds, sr, embedder.sample_rate)
            length = need if length < 0 else min(length, need)
        return start, length

    x, sr = read_segment(str(path), window)
    wav = to_tensor(x, sr, embedder.sample_rate, path)
    if max_seconds:
        wav = wav[: int(max_seconds * embedder.sample_rate)]
    if wav.numel() < embedder.min_seconds * embedder.sample_rate:
        raise DataError(path, f"{wav.numel() / embedder.sample_rate:.3f} s of audio: shorter than the "
                              f"{embedder.kind} embedder's minimum {embedder.min_seconds:g} s")
    return wav


def embed_rows(embedder, rows, batch_size=1, max_seconds=None, progress=False):
    """float32 [N, D] embeddings of manifest rows, in row order (length-sorted padded batches)."""
    from tqdm.auto import tqdm

    if not rows:
        return np.zeros((0, 0), np.float32)
    order = sorted(range(len(rows)), key=lambda i: (rows[i].duration, i))
    out = [None] * len(rows)
    for a in tqdm(range(0, len(order), batch_size), desc="embedding", disable=not progress, mininterval=2):
        idx = order[a : a + batch_size]
        wavs = [load_waveform(rows[i].wav, embedder, rows[i].start, rows[i].stop, max_seconds) for i in idx]
        n = max(w.numel() for w in wavs)
        batch = torch.zeros(len(wavs), n)
        for k, w in enumerate(wavs):
            batch[k, : w.numel()] = w
        emb = embedder.embed(batch, torch.tensor([w.numel() / n for w in wavs]))
        for k, i in enumerate(idx):
            out[i] = emb[k]
    return np.stack(out).astype(np.float32)


def embedding_source(embedder, settings):
    return {"embedder": embedder.fingerprint(), "sample_rate": embedder.sample_rate,
            "max_seconds": settings.max_seconds, "batch_size": settings.batch_size}


def read_cache(path, source):
    """{file key: embedding} from a cache file or an enrolment's arrays.npz made from ``source``."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["source"])) != source:
                log.info("%s was made with another embedder or setting: not reused", path)
                return {}
            return dict(zip((str(k) for k in z["utt_keys"]), z["embeddings"].astype(np.float32)))
    except (KeyError, ValueError, OSError, json.JSONDecodeError):
        log.warning("%s is not a readable embedding cache: not reused", path)
        return {}


def write_cache(path, source, keys, emb):
    """Write ``keys`` / ``emb`` to the cache file, keeping the entries it already holds for the same
    source (embedder and settings) that are not among ``keys``; a file of another source is replaced."""
    keys = [str(k) for k in keys]
    emb = np.asarray(emb, np.float32)
    new = set(keys)
    old = {k: v for k, v in read_cache(path, source).items() if k not in new}
    if old:
        keys = keys + list(old)
        emb = np.concatenate([emb.reshape(len(new), -1), np.stack(list(old.values()))])
    save_arrays(path, source=json.dumps(source, sort_keys=True), utt_keys=np.asarray(keys, dtype=str),
                embeddings=np.asarray(emb, np.float32))


def cached_embed(embedder, rows, settings, caches=(), progress=False):
    """(file keys, embeddings) of ``rows``, embedding only the files no cache holds."""
    source = embedding_source(embedder, settings)
    known = {}
    for c in caches:
        known.update(read_cache(c, source))
    keys = [file_key(u) for u in rows]
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        log.info("embedding %d file(s) (%d from cache)", len(todo), len(rows) - len(todo))
        new = embed_rows(embedder, [rows[i] for i in todo], settings.batch_size, settings.max_seconds, progress)
        for i, e in zip(todo, new):
            known[keys[i]] = e
    emb = np.stack([known[k] for k in keys]).astype(np.float32)
    return keys, emb, len(todo)


# --------------------------------------------------------------------------------------- split


def _rank(names, seed):
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
        names = sorted(_rank(speakers, seed)[:n])
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
    ranked = _rank(impostors, seed)
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


# ---------------------------------------------------------------------------------- classifiers


@dataclass
class Scorer:
    """logits = l2n(x - mu) W^T + b (mu: the enrolment mean, for every method)."""

    mu: np.ndarray
    W: np.ndarray
    b: np.ndarray

    def logits(self, x):
        x = torch.as_tensor(np.asarray(x, np.float32)) - torch.as_tensor(self.mu)
        return (F.normalize(x, dim=1) @ torch.as_tensor(self.W).t() + torch.as_tensor(self.b)).numpy()


def train_linear(x, y, n_classes, q=1.0, la_tau=0.0, log_prior=None, epochs=10, lr=0.2, batch_size=256,
                 weight_decay=5e-4, seed=0, min_steps=500):
    """Softmax regression on L2-normalised embeddings, classes drawn with p_j ~ n_j^q (q = 1:
    instance sampling, q = 0: class-balanced = cRT, identical to ``ltspk.decoupled.crt``),
    optionally with the logit-adjusted loss (logits + la_tau * log prior). Returns (W, b) as numpy.
    The training loop is ``ltspk.decoupled.fit_linear``'s."""
    offset = la_tau * torch.as_tensor(log_prior, dtype=torch.float32) if la_tau else None
    w, b = fit_linear(x, y, n_classes, q=q, logit_offset=offset, epochs=epochs, lr=lr, batch_size=batch_size,
                      weight_decay=weight_decay, seed=seed, min_steps=min_steps)
    return w.numpy(), b.numpy()


def ncm_scorer(x, y, n_classes):
    """``ltspk.decoupled.ncm`` as a Scorer: cosine to the normalised class means of centred,
    L2-normalised embeddings."""
    mean, cent = ncm_centroids(x, y, n_classes)
    return Scorer(mean[0].numpy(), cent.numpy(), np.zeros(n_classes, np.float32))


# The linear classifiers here are trained to convergence: a pretrained embedder's embeddings are not
# centred (resemblyzer's lie in a narrow cone), and with ltspk.decoupled's stage-2 setting (lr 0.2,
# 500 steps) on raw embeddings the instance-sampled classifier did not fit its own enrolment data
# (0% training accuracy on few-shot speakers on DSPSpeech-20), which is an optimisation failure, not
# the long tail. Embeddings are centred on the enrolment mean (as NCM centres them) and trained with
# lr 1.0 for at least 2,000 steps: 5,000 or 20,000 steps give the same classifiers' accuracy.
ENROL_LINEAR = {"lr": 1.0, "min_steps": 2000}


def fit_methods(xe, ye, xv, yv, counts, settings):
    """{family: (Scorer, chosen params, validation accuracy per setting)}. Every classifier scores
    l2n(x - mu) with mu the enrolment mean (``ncm_scorer``'s)."""
    n = len(counts)
    mu = np.asarray(xe, np.float32).mean(0)
    xe_c, xv_c = np.asarray(xe, np.float32) - mu, np.asarray(xv, np.float32) - mu
    log_prior = log_priors(counts).numpy()
    lin_opts = {"seed": settings.seed, **ENROL_LINEAR, **settings.linear_options}

    def acc(logits):
        return float((np.asarray(logits).argmax(1) == yv).mean())

    def sweep(tunable, grid, logits_of):
        scores = {float(v): acc(logits_of(float(v))) for v in grid}
        return choose_on_validation(scores, tunable.neutral), scores

    out = {}
    W, b = train_linear(xe_c, ye, n, q=1.0, **lin_opts)
    linear = Scorer(mu, W, b)
    out["linear"] = (linear, {}, {})
    out["NCM"] = (ncm_scorer(xe, ye, n), {}, {})
    z_v = linear.logits(xv)
    tau, s = sweep(POSTHOC_LA, POSTHOC_LA.grid, lambda t: z_v - t * log_prior)
    out["posthoc_la"] = (Scorer(mu, W, (b - tau * log_prior).astype(np.float32)), {POSTHOC_LA.param: tau}, s)
    fits = {0.0: (W, b)}
    for t in LA_LOSS.grid:
        if t:
            fits[float(t)] = train_linear(xe_c, ye, n, q=1.0, la_tau=t, log_prior=log_prior, **lin_opts)
    tau, s = sweep(LA_LOSS, LA_LOSS.grid, lambda t: Scorer(mu, *fits[t]).logits(xv))
    out["la_loss"] = (Scorer(mu, *fits[tau]), {LA_LOSS.param: tau}, s)
    out["cRT"] = (Scorer(mu, *train_linear(xe_c, ye, n, q=0.0, **lin_opts)), {}, {})
    p, s = sweep(TAU_NORM, TAU_NORM.grid, lambda p: tau_normalized_logits(W, xv_c, p).numpy())
    wn = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12) ** p
    out["tau_norm"] = (Scorer(mu, wn.astype(np.float32), np.zeros(n, np.float32)), {TAU_NORM.param: p}, s)
    scale = lws(linear.logits(xe), ye, seed=settings.seed, **settings.lws_options)
    out["LWS"] = (Scorer(mu, (W * scale[:, None]).astype(np.float32), (b * scale).astype(np.float32)), {}, {})
    return out


# ------------------------------------------------------------------------ calibration, rejection


def fit_temperature(logits, y):
    """T minimising the validation NLL of softmax(z / T) (log T bounded to [-ln 1000, ln 1000])."""
    from scipy.optimize import minimize_scalar

    z, y = torch.as_tensor(np.asarray(logits, np.float64)), torch.as_tensor(np.asarray(y), dtype=torch.long)
    res = minimize_scalar(lambda lt: float(F.cross_entropy(z / math.exp(lt), y)), bounds=(-math.log(1000), math.log(1000)),
                          method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


def probabilities(logits, temperature):
    return torch.softmax(torch.as_tensor(np.asarray(logits, np.float64)) / temperature, dim=1).numpy()


def reject_scores(logits, temperature, by, leave_out=None):
    """The rejection score per probe; ``leave_out`` (a class per probe) scores it as if that
    speaker had never been enrolled (simulated impostors)."""
    z = np.array(logits, dtype=np.float64)
    if leave_out is not None:
        z[np.arange(len(z)), np.asarray(leave_out)] = -np.inf
    if by == "score":
        return z.max(1)
    return probabilities(z, temperature).max(1)


def unknown_calibration(known_scores, impostor_scores):
    """P(unknown | rejection score): logistic regression of enrolled (validation probes of enrolled
    speakers) against unknown (impostor probes) on the rejection score, both classes weighing half
    (``LogisticCalibration``, prior 0.5): its output is the log-likelihood ratio of "enrolled"; None
    where it cannot be fitted. ``p_unknown`` turns it into a probability at a prior."""
    k, i = np.asarray(known_scores, np.float64), np.asarray(impostor_scores, np.float64)
    if not len(k) or not len(i) or not (np.isfinite(k).all() and np.isfinite(i).all()):
        return None
    cal = LogisticCalibration.fit(np.r_[k, i], np.r_[np.ones(len(k), int), np.zeros(len(i), int)])
    return {**cal.to_dict(), "n_known_probes": int(len(k)), "n_impostor_probes": int(len(i))}


def p_unknown(calibration, scores, prior_enrolled=0.5):
    """P(the caller is not enrolled | rejection score) of ``unknown_calibration``'s fit, at a prior
    ``prior_enrolled`` that a caller is enrolled: 1 - sigmoid(llr + logit(prior_enrolled))."""
    if not 0 < prior_enrolled < 1:
        raise DataError("prior_enrolled", f"must be in (0, 1), got {prior_enrolled}")
    llr = calibration["a"] * np.asarray(scores, np.float64) + calibration["b"]
    return 1.0 / (1.0 + np.exp(llr + math.log(prior_enrolled / (1 - prior_enrolled))))


def _impostor_scores(z_known, y_known, z_imp, temperature, by):
    """(scores, simulated?): real impostor probes where there are any, else leave-own-speaker-out."""
    if len(z_imp):
        return reject_scores(z_imp, temperature, by), False
    if z_known.shape[1] < 2:
        raise DataError("impostors", "simulated impostors need at least 2 enrolled speakers")
    return reject_scores(z_known, temperature, by, leave_out=y_known), True


# ---------------------------------------------------------------------------------- enrolment


def build(rows, keys, emb, settings, embedder_info, impostors, roles=None):
    """Fit everything on (rows, embeddings): the model document, its arrays and the report.
    ``roles`` (one per row) when the split was made already (``longtail_enrolment``, or a saved
    enrolment's); else ``assign_roles``."""
    t0 = time.perf_counter()
    if roles is None:
        roles, too_small = assign_roles(rows, settings, set(impostors))
    else:
        held = {u.spk_id for u, r in zip(rows, roles) if r in ("test", "valid")}
        too_small = sorted({u.spk_id for u, r in zip(rows, roles) if r == "enrol"} - held)
    roles = np.asarray(roles)
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
    counts_map = speaker_counts([u for u, r in zip(rows, roles) if r == "enrol"])
    counts = [counts_map[s] for s in enrolled]
    th = (ShotThresholds.from_quantiles(counts_map, *settings.quantiles) if settings.quantiles
          else ShotThresholds.fitted(counts_map, settings.many_above, settings.few_below))
    groups = shot_groups(counts_map, th)
    xe, ye, xv, yv = emb[m["enrol"]], y[m["enrol"]], emb[m["valid"]], y[m["valid"]]
    fitted = fit_methods(xe, ye, xv, yv, counts, settings)

    methods, arrays, report_methods = {}, {}, {}
    for name, (scorer, params, sweep) in fitted.items():
        z_v = scorer.logits(xv)
        z_iv = scorer.logits(emb[m["impostor_valid"]]) if m["impostor_valid"].any() else np.zeros((0, len(enrolled)))
        temp = fit_temperature(z_v, yv)
        correct_v = z_v.argmax(1) == yv
        oscr, imps = {}, {}
        for by in REJECT_BY:
            imps[by] = _impostor_scores(z_v, yv, z_iv, temp, by)
            oscr[by] = oscr_auc(reject_scores(z_v, temp, by), correct_v, imps[by][0])
        by = settings.reject_by if settings.reject_by != "auto" else max(REJECT_BY, key=lambda b: (oscr[b], b == "prob"))
        imp, simulated = imps[by]
        known_v = reject_scores(z_v, temp, by)
        methods[name] = {"params": params, "valid_accuracy": 100 * float(correct_v.mean()), "temperature": temp,
                         "reject_by": by, "valid_oscr_auc": {k: 100 * v for k, v in oscr.items()},
                         "threshold": far_threshold(imp, settings.target_far), "threshold_impostors":
                         ("simulated (own speaker left out)" if simulated else "validation impostor speakers"),
                         "n_threshold_impostor_probes": int(len(imp)),
                         "min_threshold_impostor_probes": min_impostor_probes(settings.target_far),
                         "threshold_caution": threshold_caution(len(imp), settings.target_far),
                         "unknown_calibration": unknown_calibration(known_v, imp),
                         "validation_sweep": {f"{k:g}": 100 * v for k, v in sweep.items()}}
        for part in ("mu", "W", "b"):
            arrays[f"{name}.{part}"] = np.asarray(getattr(scorer, part), np.float32)
    chosen = settings.method if settings.method != "auto" else max(
        FAMILIES, key=lambda f: (methods[f]["valid_accuracy"], -FAMILIES.index(f)))
    if methods[chosen]["threshold_caution"]:
        log.warning("%s: %s", chosen, methods[chosen]["threshold_caution"])

    # ---- test report
    report = {"n_enrolled_speakers": len(enrolled), "n_impostor_speakers": len(impostors),
              "split_sizes": {r: int(v.sum()) for r, v in m.items()}, "shot_thresholds": th.as_dict(),
              "shot_group_sizes": {g: sum(1 for s in enrolled if groups[s] == g) for g in SHOT_GROUPS},
              "too_small_to_hold_out": too_small, "deployed_method": chosen}
    if m["test"].any():
        xt, yt = emb[m["test"]], y[m["test"]]
        gt = np.asarray([groups[enrolled[c]] for c in yt])
        for name, (scorer, _, _) in fitted.items():
            info = methods[name]
            zt = scorer.logits(xt)
            z_it = scorer.logits(emb[m["impostor_test"]]) if m["impostor_test"].any() else np.zeros((0, len(enrolled)))
            closed = shot_group_accuracy(zt.argmax(1), yt, gt)
            ks = reject_scores(zt, info["temperature"], info["reject_by"])
            imp, simulated = _impostor_scores(zt, yt, z_it, info["temperature"], info["reject_by"])
            opn = openset_report(ks, zt.argmax(1) == yt, gt, imp, tuple(settings.fars))
            at = {**far_at_threshold(imp, info["threshold"]),
                  "dir": 100 * float(((zt.argmax(1) == yt) & (ks >= info["threshold"])).mean())}
            report_methods[name] = {"closed_set": closed, "open_set": opn, "at_deployed_threshold": at,
                                    "impostors": "simulated (own speaker left out)" if simulated else "test impostor speakers"}
        report["test"] = report_methods
        report["verification"] = verification_calibration(fitted["NCM"][0], emb, y, m)
    info = {"format": FORMAT, "version": VERSION, "embedder": embedder_info["embedder"],
            "embedding_source": embedder_info["source"], "embedding_dim": int(emb.shape[1]),
            "settings": {**asdict(settings), "impostors": list(impostors)}, "speakers": enrolled,
            "counts": {s: counts_map[s] for s in enrolled}, "shot_groups": {s: groups[s] for s in enrolled},
            "shot_thresholds": th.as_dict(),
            "holdout": holdout_counts(rows, roles, settings),
            "impostor_speakers": {"valid": sorted(set(_rank(impostors, settings.seed)[0::2])),
                                  "test": sorted(set(_rank(impostors, settings.seed)[1::2]))},
            "methods": methods, "deployed": {"method": chosen, **{k: methods[chosen][k] for k in
                                                                 ("temperature", "reject_by", "threshold")},
                                             "target_far": settings.target_far}}
    arrays.update(utt_keys=np.asarray(keys, dtype=str), utt_ids=np.asarray([u.ID for u in rows], dtype=str),
                  utt_speakers=spk.astype(str), utt_paths=np.asarray([u.wav for u in rows], dtype=str),
                  utt_start=np.asarray([u.start for u in rows], np.int64),
                  utt_stop=np.asarray([u.stop for u in rows], np.int64),
                  utt_duration=np.asarray([u.duration for u in rows], np.float64),
                  utt_roles=roles.astype(str), embeddings=emb.astype(np.float32),
                  source=np.asarray(json.dumps(embedder_info["source"], sort_keys=True)))
    report["seconds_fit_and_evaluate"] = time.perf_counter() - t0
    return info, arrays, report


def verification_calibration(ncm, emb, y, m):
    """Trials: each validation / test probe against every enrolled speaker (cosine to the NCM
    centroid; impostor probes give non-target trials only). Logistic calibration fitted on the
    validation trials, calibrated metrics on the test trials."""
    def trials(known, imp):
        z = ncm.logits(emb[known])
        lab = np.zeros_like(z, dtype=int)
        lab[np.arange(len(z)), y[known]] = 1
        if imp.any():
            zi = ncm.logits(emb[imp])
            z, lab = np.r_[z, zi], np.r_[lab, np.zeros_like(zi, dtype=int)]
        return z.ravel(), lab.ravel()

    dev_s, dev_l = trials(m["valid"], m["impostor_valid"])
    ev_s, ev_l = trials(m["test"], m["impostor_test"])
    cal = LogisticCalibration.fit(dev_s, dev_l)
    return {"scores": "cosine to the NCM speaker centroid", "calibration": cal.to_dict(), "dev_trials": int(dev_s.size),
            **calibrated_metrics(cal(ev_s), ev_l)}


def _embedder_info(embedder, settings):
    return {"embedder": embedder.describe(), "source": embedding_source(embedder, settings)}


def save_model(out, info, arrays, report, cache=None):
    with staged_folder(out) as tmp:
        with open(tmp / "arrays.npz", "wb") as f:
            np.savez(f, **arrays)
        write_json(tmp / "model.json", info)
        write_json(tmp / "report.json", report)
        write_text(tmp / "report.md", report_markdown(info, report))
    if cache:
        write_cache(cache, info["embedding_source"], arrays["utt_keys"], arrays["embeddings"])
    return Path(out)


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


# ------------------------------------------------------------------------------ a saved model


class EnrolmentModel:
    """A saved enrolment: load (no pickle), predict, and the data to refit with new speakers."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.info = read_json(self.folder / "model.json")
        if self.info.get("format") != FORMAT:
            raise DataError(self.folder / "model.json", "not an ltspk enrolment model")
        if self.info.get("version") != VERSION:
            raise DataError(self.folder / "model.json", f"enrolment format version {self.info.get('version')}, this "
                                                        f"ltspk reads {VERSION}: enrol again")
        try:
            with np.load(self.folder / "arrays.npz", allow_pickle=False) as z:
                self.arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise DataError(self.folder / "arrays.npz", "file not found") from None
        except (ValueError, OSError) as e:
            raise DataError(self.folder / "arrays.npz", f"unreadable ({e})") from None
        d, c = self.info["embedding_dim"], len(self.info["speakers"])
        for f in FAMILIES:
            shapes = tuple(self.arrays.get(f"{f}.{p}", np.zeros(0)).shape for p in ("mu", "W", "b"))
            if shapes != ((d,), (c, d), (c,)):
                raise DataError(self.folder / "arrays.npz", f"{f}: arrays of shape {shapes} do not fit {c} speakers "
                                                            f"x {d} dimensions")
        self.settings = EnrolSettings(**{**self.info["settings"]})
        self.speakers = list(self.info["speakers"])

    def scorer(self, method=None):
        f = method or self.info["deployed"]["method"]
        if f not in FAMILIES:
            raise DataError("method", f"{f!r}: choose one of {', '.join(FAMILIES)}")
        return Scorer(*(self.arrays[f"{f}.{p}"] for p in ("mu", "W", "b")))

    def rows(self):
        a = self.arrays
        return [Utterance(str(i), float(d), str(p), int(s), int(e), str(k)) for i, d, p, s, e, k in
                zip(a["utt_ids"], a["utt_duration"], a["utt_paths"], a["utt_start"], a["utt_stop"], a["utt_speakers"])]

    def embedder(self, override=None, device="cpu"):
        from ltspk.embedders import from_spec, load_embedder

        return load_embedder(override, device) if override else from_spec(self.info["embedder"], device)

    def check_embedder(self, embedder):
        """Refuse, before any file is read, an embedder other than the one of the enrolment."""
        if embedder.fingerprint() != self.info["embedder"]["fingerprint"]:
            raise DataError(self.folder, f"the embedder ({embedder.spec()}) is not the one this enrolment was made "
                                         "with (its weights or settings differ): enrol again with it")

    def check_embeddings(self, embedder, emb):
        d = self.info["embedding_dim"]
        if emb.shape[1] != d:
            raise DataError(self.folder, f"the {embedder.kind} embedder gives {emb.shape[1]}-dimensional embeddings; "
                                         f"this enrolment holds {d}-dimensional ones: use the embedder it was enrolled with")

    def predict(self, paths, embedder, top_k=3, method=None, prior_enrolled=0.5):
        """Per file: {file, speaker | 'unknown', p_unknown, top: [[speaker, probability], ...],
        top_if_enrolled, score, threshold} or {file, error}.

        ``p_unknown`` is the probability that the caller is not enrolled (``unknown_calibration``, fitted
        on the validation probes, at the prior ``prior_enrolled`` that a caller is enrolled; None for a
        model enrolled before it was fitted); ``top`` gives P(that speaker) = (1 - p_unknown) x P(that
        speaker | enrolled), so ``top`` and ``p_unknown`` sum to at most 1; ``top_if_enrolled`` the
        closed-set P(speaker | enrolled), which says nothing of whether the caller is enrolled. The
        decision ('unknown' below the threshold) is the threshold's, set for the target false-alarm rate."""
        dep = dict(self.info["deployed"])
        if method and method not in FAMILIES:
            raise DataError("method", f"{method!r}: choose one of {', '.join(FAMILIES)}")
        if method and method != dep["method"]:
            dep = {"method": method, **{k: self.info["methods"][method][k] for k in ("temperature", "reject_by",
                                                                                     "threshold")}}
        calibration = self.info["methods"][dep["method"]].get("unknown_calibration")
        self.check_embedder(embedder)
        from ltspk.data.audio import printable

        scorer, results, wavs = self.scorer(dep["method"]), [], []
        for p in paths:
            try:
                wavs.append(load_waveform(p, embedder, max_seconds=self.settings.max_seconds))
                results.append({"file": printable(p)})
            except DataError as e:
                results.append({"file": printable(p), "error": e.problem})
        ok = [r for r in results if "error" not in r]
        if not ok:
            return results
        emb = np.concatenate([embedder.embed(w[None]) for w in wavs])
        self.check_embeddings(embedder, emb)
        z = scorer.logits(emb)
        prob = probabilities(z, dep["temperature"])
        score = reject_scores(z, dep["temperature"], dep["reject_by"])
        unknown = p_unknown(calibration, score, prior_enrolled) if calibration else [None] * len(ok)
        for r, pr, s, pu in zip(ok, prob, score, unknown):
            top = np.argsort(-pr, kind="stable")[:top_k]
            known = 1.0 if pu is None else 1.0 - float(pu)
            r.update(speaker=self.speakers[top[0]] if s >= dep["threshold"] else "unknown",
                     p_unknown=None if pu is None else float(pu),
                     top=[[self.speakers[i], known * float(pr[i])] for i in top],
                     top_if_enrolled=[[self.speakers[i], float(pr[i])] for i in top], score=float(s),
                     reject_by=dep["reject_by"], threshold=dep["threshold"], prior_enrolled=prior_enrolled)
        return results


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


# --------------------------------------------------------------------------------------- report


def _f(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def report_markdown(info, report):
    th = report["shot_thresholds"]
    sizes = report["shot_group_sizes"]
    lines = [f"# Enrolment: {report['n_enrolled_speakers']} speakers ({info['embedder']['kind']} embedder, "
             f"{info['embedding_dim']}-dim)", "",
             f"Shot groups by enrolled recordings: many {th['many']} ({sizes['many']} speakers), medium {th['medium']} "
             f"({sizes['medium']}), few {th['few']} ({sizes['few']}). Split sizes: "
             + ", ".join(f"{k} {v}" for k, v in report["split_sizes"].items()) + ".", ""]
    if report["too_small_to_hold_out"]:
        lines += [f"Enrolled whole, not evaluated (too few recordings to hold out): "
                  f"{', '.join(report['too_small_to_hold_out'][:20])}", ""]
    dep = info["deployed"]
    m_dep = info["methods"][dep["method"]]
    lines += [f"Deployed: **{dep['method']}** (chosen on validation accuracy), temperature {dep['temperature']:.3g}, "
              f"'unknown' when the top {REJECT_LABEL[dep['reject_by']]} < {dep['threshold']:.4g} (target false-alarm rate "
              f"{dep['target_far']:g} on {m_dep.get('n_threshold_impostor_probes', '?')} impostor probes: "
              f"{m_dep['threshold_impostors']}).", ""]
    if m_dep.get("threshold_caution"):
        lines += [f"**Caution**: {m_dep['threshold_caution']}.", ""]
    test = report.get("test")
    if not test:
        return "\n".join(lines + ["No test hold-out (test_per_speaker 0): no test figures."]) + "\n"
    lines += ["## Closed-set top-1 accuracy % on the test hold-out", "",
              "| method | setting (chosen on validation) | valid | many | medium | few | overall |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for f, r in test.items():
        m = info["methods"][f]
        par = ", ".join(f"{k}={v:g}" for k, v in m["params"].items()) or "-"
        c = r["closed_set"]
        lines.append(f"| {f} | {par} | {_f(m['valid_accuracy'])} | " + " | ".join(_f(c[g]) for g in SHOT_GROUPS)
                     + f" | {_f(c['overall'])} |")
    fars = info["settings"]["fars"]
    imp = next(iter(test.values()))["impostors"]
    lines += ["", f"## Open set on the test hold-out (impostors: {imp})", "",
              "DIR %: probes of enrolled speakers accepted and correctly identified, at the threshold where the given "
              "share of impostor probes is accepted; OSCR: area under DIR against false-alarm rate (%, at most the "
              "closed-set accuracy).", "",
              "| method | reject by | group | n | " + " | ".join(f"DIR@FAR {100 * f:g}%" for f in fars)
              + " | OSCR area | FAR % [95% interval] of n impostor probes / DIR at the deployed threshold |",
              "|---|---|---|---:|" + "---:|" * len(fars) + "---:|---|"]
    for f, r in test.items():
        o, at = r["open_set"], r["at_deployed_threshold"]
        for g in (*SHOT_GROUPS, "overall"):
            row = o.get(g)
            if row is None:
                continue
            ci = at.get("far_ci95")
            far = f"{100 * at['far']:.1f}" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}] of {at['n_impostor_probes']}"
                                              if ci else "")
            extra = f"{far} / {at['dir']:.1f}" if g == "overall" else ""
            lines.append(f"| {f} | {info['methods'][f]['reject_by']} | {g} | {row['n']} | "
                         + " | ".join(_f(row[f"dir@{x:g}"]) for x in fars) + f" | {_f(row['oscr_auc'])} | {extra} |")
    v = report["verification"]
    lines += ["", "## Verification scores, calibrated", "",
              f"Trials: each test probe against every enrolled speaker ({v['scores']}), {v['n_trials']} trials; "
              f"logistic calibration fitted on {v['dev_trials']} validation trials.", "",
              "| EER % | minDCF 0.01 | actDCF 0.01 | minDCF 0.05 | actDCF 0.05 | Cllr | min Cllr |",
              "|---:|---:|---:|---:|---:|---:|---:|",
              f"| {v['eer']:.2f} | {v['min_dcf_0.01']:.3f} | {v['act_dcf_0.01']:.3f} | {v['min_dcf_0.05']:.3f} | "
              f"{v['act_dcf_0.05']:.3f} | {v['cllr']:.3f} | {v['min_cllr']:.3f} |"]
    return "\n".join(lines) + "\n"
