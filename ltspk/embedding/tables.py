"""Embedding tables on disk: ``.npz`` with ``ids`` (unicode) and ``embeddings`` (float32), no pickle."""

import numpy as np

from ltspk.runtime.atomic import atomic_path
from ltspk.runtime.errors import DataError


def save_embeddings(path, ids, matrix):
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.shape[0] != len(ids):
        raise ValueError(f"{len(ids)} ids for {matrix.shape[0]} embeddings")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, ids=np.asarray(ids, dtype=str), embeddings=matrix)


def save_arrays(path, **arrays):
    """Plain numeric/unicode arrays in one ``.npz``, written atomically (loadable without pickle)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def load_arrays(path, keys):
    """The named arrays of an ``.npz`` written by ``save_arrays``; a clear error when one is missing."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (KeyError, ValueError, OSError) as e:
        raise DataError(path, f"missing or unreadable array ({e})") from None


def load_embeddings(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, matrix = [str(i) for i in z["ids"]], z["embeddings"].astype(np.float32)
    except FileNotFoundError:
        raise DataError(path, "embedding file not found") from None
    except (KeyError, ValueError, OSError) as e:
        raise DataError(path, f"not an ltspk embedding file ({e})") from None
    if matrix.ndim != 2 or matrix.shape[0] != len(ids):
        raise DataError(path, f"{len(ids)} ids but embeddings of shape {matrix.shape}")
    return ids, matrix
