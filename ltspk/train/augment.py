"""Waveform augmentation as SpeechBrain's VoxCeleb recipe does it, from folders the user has.

``build_augmenter`` (called from the hparams with ``!apply:``) returns SpeechBrain's own
``speechbrain.augment.augmenter.Augmenter`` over SpeechBrain's own augmenters:

- ``AddNoise`` (SNR ``snr_low``..``snr_high`` dB) when ``noise_folder`` is given, and
  ``AddReverb`` when ``rir_folder`` is given: any folder of audio files (MUSAN,
  RIRS_NOISES/simulated_rirs, your own), listed into the CSVs these classes read
  (``ID,duration,wav,wav_format,wav_opts``, written by ``write_augment_csv``). Nothing is
  downloaded and the folders are never written to (SpeechBrain's ``prepare_csv`` rewrites
  multi-channel files in place and deletes files it cuts; this does neither).
- the data-free augmenters the hparams pass in ``augmentations`` (``DropFreq``, ``DropChunk``,
  ``SpeedPerturb``), which stay on without any folder.

With ``parallel_augment`` and ``concat_original`` (the recipe's setting) each training batch
becomes the originals plus one augmented copy per augmenter; ``Augmenter.replicate_labels``
repeats the labels in the same order (``ltspk.train.brain``). What is on, and what is off and why,
is in ``augmenter.ltspk_summary`` (logged when training starts).

Resuming: the data-free augmenters draw from torch's generator, which every checkpoint holds
(``ltspk.runtime.rng``); AddNoise and AddReverb read their files through their own SpeechBrain loaders,
whose position is not checkpointed, so a resumed run draws other noise/RIR files than the
uninterrupted one would have (as in SpeechBrain).
"""

import csv
import logging
import re
from pathlib import Path

import soundfile as sf

from ltspk.data.folder import audio_files
from ltspk.runtime.atomic import atomic_open
from ltspk.runtime.errors import DataError

log = logging.getLogger(__name__)
CSV_HEADER = ["ID", "duration", "wav", "wav_format", "wav_opts"]


def _listing(folder):

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "augmentation folder not found (give a folder of .wav/.flac files, or null)")
    files = audio_files(folder)
    if not files:
        raise DataError(folder, "no audio files (.wav, .flac, .ogg) below this augmentation folder")
    return folder, files


def _pieces(path, info, max_frames, pieces_folder, uid):
    """Copies of ``path`` cut into ceil(frames / max_frames) pieces of even length (none longer
    than ``max_frames``, none much shorter than half of it); written once, then reused."""
    out = []
    size = -(-info.frames // -(-info.frames // max_frames))
    for k, start in enumerate(range(0, info.frames, size)):
        stop = min(start + size, info.frames)
        piece = Path(pieces_folder) / f"{uid}__{k:04d}.wav"
        if not (piece.is_file() and sf.info(str(piece)).frames == stop - start):
            piece.parent.mkdir(parents=True, exist_ok=True)
            x, sr = sf.read(str(path), start=start, stop=stop, dtype="float32")
            tmp = piece.with_name(f".{piece.name}.tmp")
            sf.write(str(tmp), x, sr, subtype="FLOAT", format="WAV")
            tmp.replace(piece)
        out.append((f"{uid}__{k:04d}", (stop - start) / info.samplerate, piece, "wav"))
    return out


def write_augment_csv(folder, csv_file, sample_rate=16000, max_seconds=None, pieces_folder=None):
    """Write SpeechBrain's augmentation CSV (``ID,duration,wav,wav_format,wav_opts``) for every
    audio file below ``folder``. Returns (rows written, [(file, reason)] left out).

    Files must be mono at ``sample_rate`` (SpeechBrain's ``AddNoise``/``AddReverb`` read one
    rate and one channel); others are left out with the reason. With ``max_seconds``, longer
    files are listed as pieces copied into ``pieces_folder`` (so a draw never reads minutes of
    audio); the folder itself is only read."""
    folder, files = _listing(folder)
    rows, skipped = [], []
    max_frames = int(max_seconds * sample_rate) if max_seconds else None
    taken = set()
    for rel in files:
        path = folder / rel
        uid = re.sub(r"[^\w.-]", "_", rel.rsplit(".", 1)[0])
        while uid in taken:  # "a/b.wav" and "a_b.wav": IDs must be unique in SpeechBrain's CSV
            uid += "_"
        taken.add(uid)
        try:
            info = sf.info(str(path))
        except Exception as e:  # noqa: BLE001 (soundfile raises several types)
            skipped.append((str(path), f"unreadable: {e}"))
            continue
        if "$" in str(path):
            skipped.append((str(path), "'$' in the path (SpeechBrain's CSV reader substitutes $names)"))
        elif info.channels != 1:
            skipped.append((str(path), f"{info.channels} channels (mono only)"))
        elif info.samplerate != sample_rate:
            skipped.append((str(path), f"sample rate {info.samplerate} Hz, not {sample_rate} Hz (resample the folder)"))
        elif info.frames == 0:
            skipped.append((str(path), "empty"))
        elif max_frames and info.frames > max_frames:
            rows += _pieces(path, info, max_frames, pieces_folder or Path(csv_file).parent / "pieces", uid)
        else:
            rows.append((uid, info.frames / info.samplerate, path, path.suffix.lstrip(".").lower()))
    if not rows:
        raise DataError(folder, f"no usable augmentation audio: {len(skipped)} file(s) left out, e.g. "
                                f"{skipped[0][0]}: {skipped[0][1]}")

    with atomic_open(csv_file, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for uid, duration, path, fmt in rows:
            w.writerow([uid, f"{duration:.6f}", str(Path(path).resolve()), fmt, ""])
    if skipped:
        log.warning("%d file(s) of %s left out of %s (e.g. %s: %s)", len(skipped), folder, csv_file, *skipped[0])
    return len(rows), skipped


def _prepare(folder, csv_file, sample_rate, max_seconds):
    """Write the CSV on the main process only (others wait), then count its rows everywhere."""
    import speechbrain as sb

    sb.utils.distributed.run_on_main(write_augment_csv, args=[folder, csv_file, sample_rate, max_seconds])
    with open(csv_file, encoding="utf-8") as f:
        return sum(1 for _ in f) - 1


def build_augmenter(augmentations=(), noise_folder=None, rir_folder=None, csv_folder=None, sample_rate=16000,
                    snr_low=0, snr_high=15, noise_max_seconds=None, num_workers=0, **augmenter_options):
    """SpeechBrain's ``Augmenter`` over AddNoise (``noise_folder``), AddReverb (``rir_folder``) and
    the data-free ``augmentations`` (None entries left out), in that order.

    ``augmenter_options`` go to ``Augmenter`` (defaults: SpeechBrain's VoxCeleb recipe:
    ``parallel_augment`` and ``concat_original`` True, ``augment_prob`` 1, every augmenter
    applied: ``min_augmentations`` = ``max_augmentations`` = their number). Returns None when
    no augmenter is left (no folder and no data-free augmenter)."""
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.time_domain import AddNoise, AddReverb

    used, notes = [], []
    if noise_folder:
        if not csv_folder:
            raise ValueError("build_augmenter: csv_folder is needed to write the noise CSV")
        csv_file = Path(csv_folder) / "noise.csv"
        n = _prepare(noise_folder, csv_file, sample_rate, noise_max_seconds)
        used.append(AddNoise(csv_file=str(csv_file), snr_low=snr_low, snr_high=snr_high, noise_sample_rate=sample_rate,
                             clean_sample_rate=sample_rate, num_workers=num_workers))
        notes.append(f"AddNoise: {n} noise recordings from {noise_folder} (SNR {snr_low}..{snr_high} dB)")
    else:
        notes.append("AddNoise OFF: no noise_folder given (pass --noise_folder DIR, any folder of wav/flac noise "
                     "such as MUSAN)")
    if rir_folder:
        if not csv_folder:
            raise ValueError("build_augmenter: csv_folder is needed to write the RIR CSV")
        csv_file = Path(csv_folder) / "rir.csv"
        n = _prepare(rir_folder, csv_file, sample_rate, None)
        used.append(AddReverb(csv_file=str(csv_file), reverb_sample_rate=sample_rate, clean_sample_rate=sample_rate,
                              num_workers=num_workers))
        notes.append(f"AddReverb: {n} impulse responses from {rir_folder}")
    else:
        notes.append("AddReverb OFF: no rir_folder given (pass --rir_folder DIR, any folder of wav/flac impulse "
                     "responses such as RIRS_NOISES/simulated_rirs)")
    used += [a for a in augmentations if a is not None]
    if not used:
        log.info("no augmentation: %s", "; ".join(notes))
        return None
    options = {"parallel_augment": True, "concat_original": True, "augment_prob": 1.0,
               "min_augmentations": len(used), "max_augmentations": len(used), **augmenter_options}
    augmenter = Augmenter(augmentations=used, **options)
    copies = len(used) * augmenter.repeat_augment if options["parallel_augment"] else augmenter.repeat_augment
    factor = copies + (1 if options["concat_original"] else 0)
    on = ", ".join(type(a).__name__ for a in used)
    augmenter.ltspk_summary = (f"augmentation on: {on}; each training batch becomes x{factor} "
                               f"({'originals + ' if options['concat_original'] else ''}{copies} augmented "
                               f"cop{'y' if copies == 1 else 'ies'}, labels replicated). " + "; ".join(notes))
    augmenter.ltspk_off = [n for n in notes if " OFF: " in n]
    return augmenter  # its summary is logged once, when training starts (ltspk.train.experiment)


def summary(augmenter):
    """What an Augmenter does, for the log (also for one not made by ``build_augmenter``)."""
    if augmenter is None:
        return "augmentation off"
    text = getattr(augmenter, "ltspk_summary", None)
    if text:
        return text
    names = ", ".join(type(a).__name__ for a in getattr(augmenter, "augmentations", {}).values())
    return f"augmentation on: {names or type(augmenter).__name__}"
