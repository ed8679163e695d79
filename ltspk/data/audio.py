"""Audio probing, loading (mono, resampled) and cropping, with clear errors."""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch

from ltspk.errors import DataError

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


def probe(path, verify_samples=False):
    """Header information of one file; ``DataError`` naming the file when it is unusable.

    With ``verify_samples`` the samples are read too and rejected when they hold NaN/inf
    or are entirely silent (costly on large corpora, off by default).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise DataError(path, "audio file not found")
    try:
        info = sf.info(path)
    except FileNotFoundError:
        raise DataError(path, "audio file not found") from None
    except (RuntimeError, sf.LibsndfileError) as e:
        if path.lower().endswith(".m4a"):
            raise DataError(path, M4A_HINT) from None
        raise DataError(path, f"unreadable audio ({e})") from None
    if info.frames <= 0:
        raise DataError(path, "empty audio file (0 samples)")
    if verify_samples:
        data = read(path)
        if not np.isfinite(data).all():
            raise DataError(path, "audio holds NaN or infinite samples")
        if not np.any(data):
            raise DataError(path, "audio is entirely silent (all samples zero)")
    return AudioInfo(int(info.frames), int(info.samplerate), int(info.channels))


def probe_many(paths, workers=8, verify_samples=False, progress=True, desc="probing audio"):
    """Probe files in parallel. Returns ``(infos, bad)``: infos maps path -> AudioInfo,
    bad is a list of ``(path, reason)`` for files that cannot be used."""
    from tqdm.auto import tqdm

    paths = [str(p) for p in paths]

    def one(p):
        try:
            return p, probe(p, verify_samples), None
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
                bad.append((p, problem))
    return infos, bad


def read(path, start=0, stop=None):
    """Samples ``[start, stop)`` as float32, mono (channels averaged)."""
    if not os.path.isfile(path):
        raise DataError(path, "audio file not found")
    try:
        data, _ = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise DataError(path, "audio file not found") from None
    except (RuntimeError, sf.LibsndfileError) as e:
        raise DataError(path, f"unreadable audio ({e})") from None
    return data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]


def load(path, start=0, stop=None, sample_rate=16000):
    """Load a segment as a 1-D float tensor at ``sample_rate`` (resampled when needed)."""
    sr = sf.info(str(path)).samplerate if sample_rate else None
    wav = torch.from_numpy(np.ascontiguousarray(read(path, start, stop)))
    if wav.numel() == 0:
        raise DataError(path, f"no samples in [{start}, {stop})")
    if not torch.isfinite(wav).all():
        raise DataError(path, "audio holds NaN or infinite samples")
    if sample_rate and sr != sample_rate:
        import torchaudio.functional as AF

        wav = AF.resample(wav, sr, sample_rate)
    return wav


def random_crop(wav, length, generator=None):
    """A random window of ``length`` samples; shorter audio is repeated to fill it."""
    n = wav.shape[-1]
    if n < length:
        reps = -(-length // n)
        return wav.repeat(reps)[:length]
    offset = int(torch.randint(0, n - length + 1, (1,), generator=generator))
    return wav[offset : offset + length]
