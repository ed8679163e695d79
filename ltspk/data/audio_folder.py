"""Manifest rows for a folder of audio files (for embedding extraction outside a corpus)."""

from pathlib import Path

from ltspk.data.audio import probe_many
from ltspk.data.manifest import Utterance
from ltspk.errors import DataError

EXTS = (".wav", ".flac", ".ogg")


def folder_rows(folder, workers=8, progress=True):
    """(rows, bad files): every audio file below ``folder``; ID = relative path without
    extension, speaker = the first folder of that path (or the file's stem at top level)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "audio folder not found")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTS and p.is_file())
    if not files:
        raise DataError(folder, f"no audio files ({', '.join(EXTS)}) below this folder")
    infos, bad = probe_many(files, workers, progress=progress, desc="probing audio")
    rows = []
    for p in files:
        info = infos.get(str(p))
        if info is None:
            continue
        rel = p.relative_to(folder).with_suffix("").as_posix()
        rows.append(Utterance(rel, info.duration, str(p), 0, info.frames, rel.split("/", 1)[0]))
    return rows, bad
