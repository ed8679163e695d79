"""One file's waveform at the embedder's rate: read only the native-rate frames that the first
``max_seconds`` need after resampling (the resampler's window arithmetic), resample and cut."""

import math

from ltspk.data import audio
from ltspk.data.audio import to_tensor
from ltspk.runtime.errors import DataError

# torch runs conv1d (the resampler's) on oneDNN when the padded input holds more than 20,480 samples
# and on its native im2col + GEMM kernel below that; the two round differently (1 ulp here and there).
# A read never stops short of this many frames, so a cut file is resampled by the same kernel as
# the whole segment (a shorter segment is read whole).
MIN_READ_FRAMES = 1 << 15


def frames_to_read(max_seconds, sr, target_sr):
    """Native-rate frames (from the segment's start) enough for the first ``max_seconds`` at
    ``target_sr`` to resample to the same samples as from the whole segment. torchaudio's sinc
    resampler (``lowpass_filter_width`` 6, ``rolloff`` 0.99) computes output block k
    (``target_sr / g`` samples, g = gcd) from input frames [k sr/g - width, (k + 1) sr/g + width)
    with width = ceil(6 (sr/g) / (0.99 min(sr, target_sr)/g)): read the blocks needed, one more
    and twice that width, and at least ``MIN_READ_FRAMES``."""
    g = math.gcd(int(sr), int(target_sr))
    block_in, block_out = int(sr) // g, int(target_sr) // g
    blocks = -(-int(max_seconds * target_sr) // block_out)
    width = math.ceil(6 * block_in / (0.99 * min(block_in, block_out)))
    return max(MIN_READ_FRAMES, (blocks + 1) * block_in + 2 * width)


def load_waveform(path, embedder, start=0, stop=None, max_seconds=None):
    """Samples [start, stop) (native rate) of one file as a 1-D tensor at the embedder's rate
    (resampled), cut to its first ``max_seconds`` after resampling; only the frames that cut needs
    are read (``frames_to_read``), so a long file is not read whole. Too-short audio is an error
    naming the file."""

    def window(sr):
        length = -1 if stop is None else max(0, stop - start)
        if max_seconds:
            need = frames_to_read(max_seconds, sr, embedder.sample_rate)
            length = need if length < 0 else min(length, need)
        return start, length

    x, sr = audio.read_segment(str(path), window)  # looked up at the call (tests replace it)
    wav = to_tensor(x, sr, embedder.sample_rate, path)
    if max_seconds:
        wav = wav[: int(max_seconds * embedder.sample_rate)]
    if wav.numel() < embedder.min_seconds * embedder.sample_rate:
        raise DataError(path, f"{wav.numel() / embedder.sample_rate:.3f} s of audio: shorter than the "
                              f"{embedder.kind} embedder's minimum {embedder.min_seconds:g} s")
    return wav
