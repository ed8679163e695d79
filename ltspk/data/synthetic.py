"""A small long-tailed corpus of SYNTHETIC voices, written in the VoxCeleb1 layout.

It lets the README's demo run on a fresh machine with no dataset, through the same
preparation code as the real corpus. Every number measured on it is a synthetic-corpus
number and is labelled so.

Each speaker is a source-filter voice: a glottal pulse train (own mean pitch, pitch range,
jitter, spectral tilt, breathiness) through cascaded formant resonators (own vocal-tract
length and per-vowel formant offsets), with fricative noise bands, at an own speaking rate.
Utterances are random phone-like sequences. Each recording session (the "video" folder)
has its own channel: a random tilt/resonance and additive noise at a random SNR, so the
speaker must be told from the voice across channels, which keeps accuracy below 100%.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ltspk.data.longtail import longtail_targets
from ltspk.runtime.atomic import atomic_path, write_text
from ltspk.runtime.errors import HparamsError

SAMPLE_RATE = 16000
# (F1, F2, F3) in Hz of a reference vocal tract, a small vowel inventory
VOWELS = np.array([
    [730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480],
    [660, 1720, 2410], [490, 1350, 1690], [570, 840, 2410], [440, 1020, 2240],
])
FRICATIVES = np.array([[4500, 1500], [2500, 800], [6000, 2000], [1800, 900]])  # centre, bandwidth
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


@dataclass
class Voice:
    f0: float
    f0_range: float
    jitter: float
    tilt: float
    breath: float
    tract: float
    vowel_offsets: np.ndarray
    rate: float


def random_voice(rng):
    female = rng.random() < 0.5
    f0 = rng.uniform(165, 250) if female else rng.uniform(85, 150)
    return Voice(
        f0=f0,
        f0_range=rng.uniform(0.05, 0.2),
        jitter=rng.uniform(0.005, 0.03),
        tilt=rng.uniform(0.85, 0.97),
        breath=rng.uniform(0.02, 0.25),
        tract=(rng.uniform(1.05, 1.2) if female else rng.uniform(0.85, 1.02)),
        vowel_offsets=rng.normal(1.0, 0.06, size=VOWELS.shape),
        rate=rng.uniform(0.75, 1.3),
    )


def _resonator(x, freq, bw, sr=SAMPLE_RATE):
    freq = min(freq, 0.45 * sr)
    r = math.exp(-math.pi * bw / sr)
    c = 2 * r * math.cos(2 * math.pi * freq / sr)
    from scipy.signal import lfilter  # here: importing scipy would slow every recipe's --help

    return lfilter([1 - c + r * r], [1, -c, r * r], x)


def _glottal(n, f0, voice, rng):
    contour = f0 * (1 + voice.f0_range * np.sin(np.linspace(0, rng.uniform(1, 4) * np.pi, n) + rng.uniform(0, 6)))
    contour *= 1 + voice.jitter * rng.standard_normal(n).cumsum() / max(1, math.sqrt(n))
    phase = np.cumsum(contour / SAMPLE_RATE)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    from scipy.signal import lfilter

    source = lfilter([1.0], [1.0, -voice.tilt], pulses)
    source = lfilter([1.0], [1.0, -voice.tilt], source)
    source -= source.mean()
    return source / (np.abs(source).max() + 1e-9) + voice.breath * rng.standard_normal(n)


def utterance(voice, rng, seconds):
    """Samples of one random phone sequence spoken by ``voice``."""
    total = int(seconds * SAMPLE_RATE)
    f0 = voice.f0 * rng.uniform(0.93, 1.07)
    rate = voice.rate * rng.uniform(0.9, 1.1)
    pieces, length = [], 0
    while length < total:
        kind = rng.random()
        dur = int(SAMPLE_RATE * rng.uniform(0.06, 0.16) / rate)
        if kind < 0.65:  # vowel
            v = rng.integers(len(VOWELS))
            seg = _glottal(dur, f0, voice, rng)
            for f, bw in zip(VOWELS[v] * voice.tract * voice.vowel_offsets[v], (80, 100, 140)):
                seg = _resonator(seg, f, bw)
            seg *= np.hanning(dur) ** 0.3
        elif kind < 0.9:  # fricative
            centre, bw = FRICATIVES[rng.integers(len(FRICATIVES))]
            seg = _resonator(rng.standard_normal(dur), centre * voice.tract, bw) * 0.3
            seg *= np.hanning(dur)
        else:  # pause / closure
            seg = np.zeros(dur // 2)
        pieces.append(seg)
        length += len(seg)
    x = np.concatenate(pieces)[:total]
    return x / (np.abs(x).max() + 1e-9)


@dataclass
class Channel:
    tilt: float
    resonance: float
    snr_db: float
    gain: float


def random_channel(rng):
    return Channel(rng.uniform(-0.6, 0.6), rng.uniform(300, 3500), rng.uniform(3, 25), rng.uniform(0.2, 0.8))


def apply_channel(x, ch, rng):
    from scipy.signal import lfilter

    y = lfilter([1.0, ch.tilt], [1.0], x)
    y = y + 0.5 * _resonator(y, ch.resonance, 300)
    noise = lfilter([1.0], [1.0, -0.7], rng.standard_normal(len(y)))
    p_sig, p_noise = np.mean(y ** 2) + 1e-12, np.mean(noise ** 2) + 1e-12
    y = y + noise * math.sqrt(p_sig / (p_noise * 10 ** (ch.snr_db / 10)))
    return (ch.gain * y / (np.abs(y).max() + 1e-9)).astype(np.float32)


def _video_id(rng):
    return "".join(rng.choice(list(ALPHABET), size=11))


def _write_wav(path, samples):
    with atomic_path(path) as tmp:
        sf.write(tmp, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def make_corpus(out_dir, n_train_speakers=48, n_test_speakers=10, max_utts=80, imbalance=40.0,
                test_utts=8, min_seconds=1.5, max_seconds=3.5, utts_per_session=6, seed=0,
                n_trials=3000, progress=True):
    """Write ``<out_dir>/voxceleb1/{wav/,vox1_meta.csv,veri_test2.txt}`` and return its path.

    Training speakers (ids from id10001) follow an exponential long-tail profile from
    ``max_utts`` down by ``imbalance``; test speakers use VoxCeleb1's test ids (id10270..)
    so the real preparation's dev/test split applies unchanged.
    """
    from tqdm.auto import tqdm

    if n_test_speakers > 40:
        raise HparamsError("at most 40 test speakers (VoxCeleb1's test id range)")
    rng = np.random.default_rng(seed)
    root = Path(out_dir) / "voxceleb1"
    train_spk = [f"id{10001 + i}" for i in range(n_train_speakers)]
    test_spk = [f"id{10270 + i}" for i in range(n_test_speakers)]
    # every speaker starts at max_utts; ties rank by ID, so id10001 keeps the most
    profile = longtail_targets({s: max_utts for s in train_spk}, imbalance)
    counts = {s: max(4, n) for s, n in profile.items()}  # >= 2 train + 2 held out
    counts.update({s: test_utts for s in test_spk})
    jobs = []
    for spk, n in counts.items():
        voice = random_voice(rng)
        n_sessions = max(1, math.ceil(n / utts_per_session))
        sessions = [(_video_id(rng), random_channel(rng)) for _ in range(n_sessions)]
        for k in range(n):
            video, ch = sessions[k % n_sessions]
            jobs.append((spk, video, k // n_sessions + 1, voice, ch, int(rng.integers(2**31))))
    ids = []
    for spk, video, idx, voice, ch, s in tqdm(jobs, desc="synthesising voices", disable=not progress):
        r = np.random.default_rng(s)
        x = apply_channel(utterance(voice, r, r.uniform(min_seconds, max_seconds)), ch, r)
        rel = f"{spk}/{video}/{idx:05d}.wav"
        _write_wav(root / "wav" / rel, x)
        ids.append((spk, rel))
    meta = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    meta += [f"{s}\tSynthetic_{s}\tu\tSynthetic\t{'test' if s in test_spk else 'dev'}" for s in counts]
    write_text(root / "vox1_meta.csv", "\n".join(meta) + "\n")

    from ltspk.data.trials import Trial, generate_trials, write_trials

    trials = generate_trials({rel[:-4]: spk for spk, rel in ids if spk in test_spk}, n_trials, seed=seed)
    write_trials(root / "veri_test2.txt", [Trial(t.label, t.enrol + ".wav", t.test + ".wav") for t in trials])
    write_text(root / "README.txt",
               "SYNTHETIC speech generated by ltspk.data.synthetic (not VoxCeleb). "
               "Layout follows VoxCeleb1; figures measured on it are synthetic-corpus figures.\n")
    return root
