"""Audio probing, reading (mono) and loading (resampled tensors), with clear errors naming the file.

A file whose name is not valid UTF-8 (bytes from another encoding, e.g. latin-1 ``\\xff``) cannot
go into a manifest (UTF-8 CSV): it is an unusable file like an unreadable one, named with its
odd bytes shown as ``\\xNN`` (``printable``), never a codec error that names no file.
"""

import errno
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from ltspk.runtime.errors import DataError, HparamsError

M4A_HINT = (
    "libsndfile cannot decode AAC (.m4a). Convert the tree to 16 kHz mono wav first, e.g. "
    "ffmpeg -i IN.m4a -ac 1 -vn -acodec pcm_s16le -ar 16000 OUT.wav, keeping the same layout"
)


@dataclass(frozen=True)
class AudioInfo:
    frames: int
    samplerate: int
    channels: int

    @property
    def duration(self):
        return self.frames / self.samplerate


NOT_UTF8 = ("file name is not valid UTF-8 (its odd bytes shown as \\xNN): rename the file, e.g. with "
            "convmv -f latin1 -t utf8 --notest -r DIR (manifests and results are UTF-8)")


def printable(path):
    """``path`` as text that prints and writes to a UTF-8 file: bytes of the name that are not
    UTF-8 (held by Python as surrogate escapes) shown as ``\\xNN``."""
    s = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that no file name decoding made
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def check_name(path):
    """``DataError`` naming ``path`` (printably) when its name is not valid UTF-8."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(printable(path), NOT_UTF8) from None


def missing(path, what="audio file"):
    """Why ``path`` cannot be opened: a symbolic-link loop, a broken link, or not found."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic-link loop"
        if os.path.islink(path):
            return f"broken symbolic link (to {os.readlink(path)})"
    return f"{what} not found"


def _reason(e):
    """libsndfile's reason, without its "Error opening 'PATH': " prefix (the error names the file)."""
    return getattr(e, "error_string", None) or str(e)


def read_segment(path, window=lambda sr: (0, -1)):
    """Mono float32 samples (channels averaged) and the file's sample rate, from one open of the
    file; ``window(sample_rate) -> (start, length)`` in native-rate samples (default: all)."""
    check_name(path)
    try:
        with sf.SoundFile(path) as f:
            sr = f.samplerate
            start, length = window(sr)
            f.seek(start)
            data = f.read(length, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        if not os.path.isfile(path):
            raise DataError(path, missing(path)) from None
        raise DataError(path, f"unreadable audio ({_reason(e)})") from None
    return (data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]), sr


def to_tensor(x, sr, sample_rate, path):
    """Samples ``x`` at rate ``sr`` as a float tensor at ``sample_rate`` (None: at ``sr``); no samples
    or NaN/inf are errors naming ``path``."""
    import torch

    wav = torch.from_numpy(np.ascontiguousarray(x))
    if wav.numel() == 0:
        raise DataError(path, "no samples")
    if not torch.isfinite(wav).all():
        raise DataError(path, "audio holds NaN or infinite samples")
    if sample_rate and sr != sample_rate:
        import torchaudio.functional as AF

        wav = AF.resample(wav, sr, sample_rate)
    return wav


def load(path, start=0, stop=None, sample_rate=16000):
    """Samples ``[start, stop)`` (native rate) as a 1-D float tensor at ``sample_rate``."""
    x, sr = read_segment(str(path), lambda sr: (start, -1 if stop is None else max(0, stop - start)))
    return to_tensor(x, sr, sample_rate, path)


def probe(path, verify_samples=False, min_seconds=None):
    """Header information of one file; ``DataError`` naming the file when it is unusable.

    With ``verify_samples`` the samples are read too and rejected when they hold NaN/inf
    or are entirely silent (costly on large corpora, off by default). With ``min_seconds``
    shorter files are rejected (an embedder needs some frames).
    """
    path = str(path)
    check_name(path)
    if not os.path.isfile(path):
        raise DataError(path, missing(path))
    if os.path.getsize(path) == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        info = sf.info(path)
    except FileNotFoundError:
        raise DataError(path, missing(path)) from None
    except (RuntimeError, sf.LibsndfileError) as e:
        if path.lower().endswith(".m4a"):
            raise DataError(path, M4A_HINT) from None
        raise DataError(path, f"unreadable audio ({_reason(e)})") from None
    if info.frames <= 0:
        raise DataError(path, "empty audio file (0 samples)")
    found = AudioInfo(int(info.frames), int(info.samplerate), int(info.channels))
    if min_seconds and found.duration < min_seconds:
        raise DataError(path, f"shorter than min_seconds={min_seconds:g} s ({found.duration:.3f} s)")
    if verify_samples:
        data, _ = read_segment(path)
        if not np.isfinite(data).all():
            raise DataError(path, "audio holds NaN or infinite samples")
        if not np.any(data):
            raise DataError(path, "audio is entirely silent (all samples zero)")
    return found


def probe_many(paths, workers=8, verify_samples=False, progress=True, desc="probing audio", min_seconds=None):
    """Probe files in parallel. Returns ``(infos, bad)``: infos maps path -> AudioInfo,
    bad is a list of ``(path, reason)`` for files that cannot be used, in ``paths`` order (paths as
    ``printable`` gives them, so that the list prints and writes as UTF-8)."""
    from tqdm.auto import tqdm

    paths = [str(p) for p in paths]

    def one(p):
        try:
            return p, probe(p, verify_samples, min_seconds), None
        except DataError as e:
            return p, None, e.problem

    infos, bad = {}, []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for p, info, problem in tqdm(
            pool.map(one, paths), total=len(paths), desc=desc, disable=not progress, mininterval=1.0
        ):
            if problem is None:
                infos[p] = info
            else:
                bad.append((printable(p), problem))
    return infos, bad


def refuse_bad_files(bad, on_bad_file):
    """``on_bad_file='raise'``: the first bad file as a ``DataError`` (with the count);
    ``'skip'``: nothing (the caller lists them)."""
    if on_bad_file not in ("skip", "raise"):
        raise HparamsError(f"on_bad_file must be 'skip' or 'raise', got {on_bad_file!r}")
    if bad and on_bad_file == "raise":
        p, why = bad[0]
        raise DataError(p, f"{why} ({len(bad)} bad file(s) in all; on_bad_file='skip' reports and goes on)")
