"""SpeechBrain CSV manifests (``ID,duration,wav,start,stop,spk_id``) and their I/O."""

import csv
import math
from dataclasses import dataclass, fields

from ltspk.runtime.atomic import atomic_open
from ltspk.runtime.errors import DataError

COLUMNS = ("ID", "duration", "wav", "start", "stop", "spk_id")


@dataclass(frozen=True)
class Utterance:
    """One manifest row. ``start``/``stop`` are sample indices of the segment used."""

    ID: str
    duration: float
    wav: str
    start: int
    stop: int
    spk_id: str


def write_manifest(path, utterances):
    """Write rows atomically, in the order given."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for u in utterances:
            writer.writerow([u.ID, f"{u.duration:.4f}", u.wav, u.start, u.stop, u.spk_id])


def read_manifest(path):
    """Read and validate a manifest; every problem names the file and the row."""
    try:
        f = open(path, encoding="utf-8", newline="")
    except FileNotFoundError:
        raise DataError(path, "manifest not found") from None
    with f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(path, f"missing manifest column(s) {missing}; expected {list(COLUMNS)}")
        rows, seen = [], set()
        for line, rec in enumerate(reader, start=2):
            try:
                u = Utterance(
                    ID=rec["ID"],
                    duration=float(rec["duration"]),
                    wav=rec["wav"],
                    start=int(rec["start"]),
                    stop=int(rec["stop"]),
                    spk_id=rec["spk_id"],
                )
            except (TypeError, ValueError) as e:
                raise DataError(path, f"line {line}: malformed row ({e})") from None
            if not u.ID or not u.spk_id or not u.wav:
                raise DataError(path, f"line {line}: empty ID, wav or spk_id")
            if not math.isfinite(u.duration) or u.duration <= 0 or u.stop <= u.start:
                raise DataError(path, f"line {line}: utterance {u.ID} has no audio (duration {u.duration})")
            if u.ID in seen:
                raise DataError(path, f"line {line}: duplicate utterance ID {u.ID!r}")
            seen.add(u.ID)
            rows.append(u)
    return rows


def speaker_counts(utterances):
    """Utterances per speaker, ordered by count (descending), then speaker ID."""
    counts = {}
    for u in utterances:
        counts[u.spk_id] = counts.get(u.spk_id, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


assert tuple(f.name for f in fields(Utterance)) == COLUMNS
