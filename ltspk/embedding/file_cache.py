"""Embeddings of manifest rows (length-sorted padded batches) and their cache: each file's embedding
is keyed by (path, segment, size, mtime) under a source key (embedder fingerprint, sample rate,
``max_seconds``, ``batch_size``), so only files no cache holds are embedded."""

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from ltspk.embedding.reading import load_waveform
from ltspk.embedding.tables import save_arrays
from ltspk.runtime.errors import DataError

log = logging.getLogger(__name__)


def file_key(u):
    """What a cached embedding of one file was made from: path, segment, size, modification time."""
    path = os.path.realpath(u.wav)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(path, "audio file not found") from None
    return f"{path}|{u.start}|{u.stop}|{st.st_size}|{st.st_mtime_ns}"


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
