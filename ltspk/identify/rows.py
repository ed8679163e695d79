"""The data to enrol as manifest rows: a speaker-folder corpus, a manifest CSV or a prepared corpus
folder; unreadable files and files shorter than the embedder's minimum are listed and left out."""

import logging
import os
from pathlib import Path

from ltspk.data.audio import probe_many
from ltspk.data.folder import list_speaker_folders
from ltspk.data.manifest import Utterance, read_manifest
from ltspk.runtime.errors import DataError

log = logging.getLogger("ltspk.identify")  # identification's one logger (the recipe prints its name)


def list_rows(source, min_seconds=0.0, progress=False):
    """(rows sorted by speaker then ID, bad files [(path, why)]) of a speaker folder, a manifest
    CSV, or a prepared corpus folder."""

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
