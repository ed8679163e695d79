"""Manifest rows for a folder of audio files (for embedding extraction outside a corpus).

Files are found as in a speaker-folder corpus (``audio_files``: .wav/.flac/.ogg below the
folder, hidden ones left out, symbolic links followed, loops refused) and probed as
preparation probes them (``probe_many``); two files with one ID are an error naming both.
"""

from pathlib import Path

from ltspk.data.audio import missing, probe_many
from ltspk.data.folder import AUDIO_EXTENSIONS, audio_files, claim_id
from ltspk.data.manifest import Utterance
from ltspk.data.prepare import PrepOptions
from ltspk.data.trials import strip_ext
from ltspk.runtime.errors import DataError


def folder_rows(folder, workers=8, progress=True, min_seconds=PrepOptions.min_seconds, verify_samples=True):
    """(rows, bad files): every usable audio file below ``folder``; ID = relative path without
    extension, speaker = the first folder of that path (or the file's stem at top level).
    Bad files (unreadable, empty, shorter than ``min_seconds``, and with ``verify_samples``
    NaN/inf or silent: each would stop an extraction) come back as ``(path, reason)``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, missing(folder, "audio folder"))
    by_id = {}
    for rel in audio_files(folder):
        claim_id(by_id, strip_ext(rel), str(folder / rel))
    if not by_id:
        raise DataError(folder, f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) below this folder")
    infos, bad = probe_many(by_id.values(), workers, verify_samples, progress, "probing audio", min_seconds)
    rows = [Utterance(uid, infos[p].duration, p, 0, infos[p].frames, uid.split("/", 1)[0])
            for uid, p in by_id.items() if p in infos]
    return rows, bad
