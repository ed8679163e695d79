"""Cosine scoring of trial lists from an embedding table, with optional AS-norm."""

import numpy as np

from ltspk.runtime.errors import DataError


class EmbeddingTable:
    """Utterance IDs and a float32 [N, D] matrix; rows are looked up by ID."""

    def __init__(self, ids, matrix):
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(ids):
            raise ValueError(f"{len(ids)} ids but an embedding matrix of shape {matrix.shape}")
        self.ids = list(ids)
        self.matrix = matrix
        self.index = {u: i for i, u in enumerate(self.ids)}
        self._normalized = None
        if len(self.index) != len(self.ids):
            raise ValueError("duplicate utterance IDs in the embedding table")

    def rows(self, ids, source="trials"):
        try:
            return np.fromiter((self.index[i] for i in ids), dtype=np.int64, count=len(ids))
        except KeyError as e:
            raise DataError(source, f"utterance {e.args[0]!r} has no embedding") from None

    def normalized(self):
        """The L2-normalised matrix, computed once (the table is not modified after creation)."""
        if self._normalized is None:
            self._normalized = l2_normalize(self.matrix)
        return self._normalized


def l2_normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_trial_scores(table, enrol_ids, test_ids, chunk=200_000, source="trials"):
    """Cosine similarity of each (enrol, test) pair, computed in chunks (O(chunk * D) memory)."""
    e_rows, t_rows = table.rows(enrol_ids, source), table.rows(test_ids, source)
    x = table.normalized()
    out = np.empty(len(e_rows), dtype=np.float64)
    for a in range(0, len(e_rows), chunk):
        b = a + chunk
        out[a:b] = np.einsum("ij,ij->i", x[e_rows[a:b]], x[t_rows[a:b]], dtype=np.float64)
    return out


def cohort_statistics(x, cohort, top_k=300, chunk=4096):
    """Mean and std of each row's top-k cosine scores against the cohort (both L2-normalised)."""
    k = min(top_k, cohort.shape[0])
    mean = np.empty(x.shape[0])
    std = np.empty(x.shape[0])
    for a in range(0, x.shape[0], chunk):
        s = x[a : a + chunk] @ cohort.T
        top = np.partition(s, s.shape[1] - k, axis=1)[:, -k:] if k < s.shape[1] else s
        mean[a : a + chunk] = top.mean(axis=1)
        std[a : a + chunk] = top.std(axis=1)
    return mean, np.maximum(std, 1e-8)


def as_norm(table, enrol_ids, test_ids, cohort, top_k=300, source="trials"):
    """Adaptive s-norm: 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t), top-k cohort statistics
    computed once per distinct utterance."""
    raw = cosine_trial_scores(table, enrol_ids, test_ids, source=source)
    cohort = l2_normalize(np.asarray(cohort, dtype=np.float32))
    uniq = sorted(set(enrol_ids) | set(test_ids))
    pos = {u: i for i, u in enumerate(uniq)}
    mean, std = cohort_statistics(table.normalized()[table.rows(uniq, source)], cohort, top_k)
    e = np.fromiter((pos[i] for i in enrol_ids), dtype=np.int64, count=len(enrol_ids))
    t = np.fromiter((pos[i] for i in test_ids), dtype=np.int64, count=len(test_ids))
    return 0.5 * ((raw - mean[e]) / std[e] + (raw - mean[t]) / std[t])


def speaker_means(table, utterance_speakers):
    """Cohort of speaker-mean embeddings (each utterance L2-normalised first)."""
    x = table.normalized()
    spk = sorted(set(utterance_speakers.values()))
    idx = {s: i for i, s in enumerate(spk)}
    sums = np.zeros((len(spk), x.shape[1]), dtype=np.float64)
    for u, s in utterance_speakers.items():
        sums[idx[s]] += x[table.index[u]]
    return spk, l2_normalize(sums).astype(np.float32)
