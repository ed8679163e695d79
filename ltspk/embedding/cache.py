"""Embeddings of manifests by an ``Embedder`` (``ltspk.embedding.embedders``), and caches that know
their source: evaluation, stage 2 and extraction embed through ``ManifestEmbeddings``.

A cache file records what it was made from (a hash of the model's weights, the manifest's
content, the size and modification time (ns) of every audio file it lists, and the settings that
shape an embedding: sample rate, evaluation crop, batch size) and is made again whenever any of
these changes: a run trained further, a re-prepared manifest, audio files overwritten in place or
another ``eval_batch_size`` never reuses stale embeddings.
"""

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ltspk.data.manifest import read_manifest
from ltspk.data.pipeline import full_pipeline, load_dataset
from ltspk.runtime.atomic import atomic_path
from ltspk.runtime.errors import DataError

log = logging.getLogger(__name__)
# what torch says when an input is shorter than a model's receptive field (reflect padding, kernels, pooling)
TOO_SHORT = ("Padding size should be less than the corresponding input dimension",
             "Kernel size can't be greater than actual input size", "Output size is too small")


def embed_dataset(embedder, dataset, batch_size=16, progress=True):
    """(ids, float32 [N, D]) of every item of a SpeechBrain dataset (its ``id`` and padded ``sig``),
    in the dataset's order and batches."""
    import speechbrain as sb
    from tqdm.auto import tqdm

    loader = sb.dataio.dataloader.make_dataloader(dataset, batch_size=batch_size, num_workers=0)
    ids, chunks = [], []
    for batch in tqdm(loader, desc="embeddings", disable=not progress):
        wavs, lens = batch.sig
        chunks.append(embedder.embed(wavs, lens))
        ids.extend(batch.id)
    return ids, np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def embed_manifest(embedder, csv_path, h, progress, rows=None):
    """(ids, float32 [N, D]) of every utterance of a manifest (or of ``rows``), whole
    utterances up to ``eval_max_seconds``, batched by length (``eval_batch_size``). Audio
    shorter than the model's receptive field is an error naming the utterance and its file."""
    ds = load_dataset(csv_path, full_pipeline(h["sample_rate"], h.get("eval_max_seconds")), rows=rows)
    ds = ds.filtered_sorted(sort_key="duration")
    batch_size = h.get("eval_batch_size", 16)
    try:
        return embed_dataset(embedder, ds, batch_size=batch_size, progress=progress)
    except RuntimeError as e:
        if not any(m in str(e) for m in TOO_SHORT):
            raise
        raise _too_short(ds, batch_size, h.get("eval_max_seconds")) from None


def _too_short(ds, batch_size, max_seconds):
    """The error for the first batch, the only one a too-short input fails in (batches are
    sorted by length, each padded to its longest utterance)."""
    ids = ds.data_ids[:batch_size]
    row = ds.data[ids[0]]
    seconds = float(row["duration"])
    cut = f", cut to eval_max_seconds={max_seconds:g} s" if max_seconds and max_seconds < seconds else ""
    also = f" (so are {', '.join(ids[1:4])}{' ...' if len(ids) > 4 else ''})" if len(ids) > 1 else ""
    return DataError(row["wav"], f"utterance {ids[0]!r} ({seconds:.3f} s{cut}) is shorter than the model's "
                                 f"receptive field{also}: leave it out (preparation's min_seconds does)")


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def audio_digest(csv_path):
    """SHA-256 over the path, size and modification time (ns) of every audio file a manifest lists:
    audio overwritten in place (same manifest) gives another digest. A missing file is a DataError
    naming it and its utterance."""

    digest, seen = hashlib.sha256(), set()
    for u in read_manifest(csv_path):
        if u.wav in seen:
            continue
        seen.add(u.wav)
        try:
            st = os.stat(u.wav)
        except FileNotFoundError:
            raise DataError(u.wav, f"audio file of utterance {u.ID!r} (listed in {csv_path}) not found") from None
        digest.update(f"{u.wav}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_source(model_hash, csv_path, h):
    return {"model": model_hash, "manifest": file_digest(csv_path), "audio": audio_digest(csv_path),
            "sample_rate": h["sample_rate"], "eval_max_seconds": h.get("eval_max_seconds"),
            "eval_batch_size": h.get("eval_batch_size", 16)}


def cached_embeddings(embedder, csv_path, cache, h, progress=True, fingerprint=None):
    """Embeddings of a manifest, read from ``cache`` when it was made from the same model,
    manifest, audio files and settings, otherwise extracted and cached. ``fingerprint``: the
    embedder's, when already computed."""
    cache = Path(cache)
    source = cache_source(fingerprint or embedder.fingerprint(), csv_path, h)
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if json.loads(str(z["source"])) == source:
                    return [str(i) for i in z["ids"]], z["embeddings"].astype(np.float32)
        except (KeyError, ValueError, OSError, json.JSONDecodeError):
            pass
        log.info("%s was made from another model, manifest, audio or setting: extracting again", cache)
    ids, emb = embed_manifest(embedder, csv_path, h, progress)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, ids=np.asarray(ids, dtype=str), embeddings=np.asarray(emb, dtype=np.float32),
                     source=np.asarray(json.dumps(source, sort_keys=True)))
    return ids, emb


@dataclass
class ManifestEmbeddings:
    """Embeddings of a run's manifests by one embedder with one set of settings (``h``: sample rate,
    ``eval_max_seconds``, ``eval_batch_size``), cached under ``cache_dir``: what evaluation and stage 2
    pass around instead of the model, the settings, the cache folder and the progress flag."""

    embedder: object
    h: dict
    cache_dir: Path
    progress: bool = True
    fingerprint: str = field(init=False)

    def __post_init__(self):
        self.cache_dir = Path(self.cache_dir)
        self.fingerprint = self.embedder.fingerprint()  # the model's weights, hashed once

    def cached(self, csv_path, name):
        """(ids, embeddings) of a manifest, cached as ``<cache_dir>/<name>``."""
        return cached_embeddings(self.embedder, csv_path, self.cache_dir / name, self.h, self.progress,
                                 self.fingerprint)

    def of_rows(self, csv_path, rows):
        """(ids, embeddings) of some rows of a manifest, not cached."""
        return embed_manifest(self.embedder, csv_path, self.h, self.progress, rows=rows)


def labels_of(ids, rows, encoder, source):
    """Class indices and speakers of embedded utterances, in embedding order."""
    spk = {u.ID: u.spk_id for u in rows}
    unknown = sorted({spk[i] for i in ids if spk[i] not in encoder.lab2ind})
    if unknown:
        raise DataError(source, f"{len(unknown)} speaker(s) unknown to the trained model's label encoder "
                                f"(e.g. {unknown[:3]})")
    return np.array([encoder.lab2ind[spk[i]] for i in ids], dtype=np.int64), np.array([spk[i] for i in ids])
