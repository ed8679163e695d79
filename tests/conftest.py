"""Shared fixtures: small corpus trees in the real on-disk layouts, with real audio files."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
DSP = ROOT.parent / "shared" / "data" / "dspspeech20"


def write_audio(path, seconds=0.5, sr=16000, seed=0, fmt=None):
    """A short real audio file (tone + noise) written with soundfile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * (120 + seed % 200) * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_16", format=fmt or path.suffix.lstrip(".").upper())
    return path


@pytest.fixture
def fsdd():
    if not FSDD.is_dir():
        pytest.skip(f"FSDD recordings not found at {FSDD} (the shared test data is absent)")
    return FSDD


@pytest.fixture
def dspspeech20():
    if not DSP.is_dir():
        pytest.skip(f"DSPSpeech-20 not found at {DSP} (the shared test data is absent)")
    return DSP


@pytest.fixture
def vox1_tree(tmp_path):
    """VoxCeleb1: 3 dev speakers (5, 3, 2 utts over videos), 2 test speakers, meta, trials."""
    root = tmp_path / "voxceleb1"
    layout = {
        "id10001": {"vidA": 3, "vidB": 2},
        "id10002": {"vidC": 3},
        "id10003": {"vidD": 1, "vidE": 1},
        "id10270": {"x6uYqmx31kE": 2},
        "id10271": {"8jEAjG6SegY": 2},
    }
    seed = 0
    for spk, vids in layout.items():
        for vid, n in vids.items():
            for k in range(1, n + 1):
                seed += 1
                write_audio(root / "wav" / spk / vid / f"{k:05d}.wav", 0.3 + 0.05 * k, seed=seed)
    meta = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    meta += [f"{s}\tName_{s}\tm\tX\t{'test' if s >= 'id10270' else 'dev'}" for s in layout]
    (root / "vox1_meta.csv").write_text("\n".join(meta) + "\n")
    (root / "meta").mkdir()
    (root / "meta" / "veri_test2.txt").write_text(
        "1 id10270/x6uYqmx31kE/00001.wav id10270/x6uYqmx31kE/00002.wav\n"
        "0 id10270/x6uYqmx31kE/00001.wav id10271/8jEAjG6SegY/00001.wav\n"
        "1 id10271/8jEAjG6SegY/00001.wav id10271/8jEAjG6SegY/00002.wav\n"
    )
    (root / "list_test_all2.txt").write_text(
        "1 id10001/vidA/00001.wav id10001/vidB/00001.wav\n0 id10001/vidA/00001.wav id10270/x6uYqmx31kE/00001.wav\n"
    )
    return root


@pytest.fixture
def cn_trees(tmp_path):
    """CN-Celeb1 (2 dev + 2 eval speakers, lists naming .wav for .flac files) and CN-Celeb2."""
    cn1 = tmp_path / "CN-Celeb_flac"
    dev = {"id00001": ["singing-01-001", "singing-01-002", "speech-02-001"], "id00002": ["vlog-01-001", "vlog-01-002"]}
    evals = {"id00800": ["interview-01-001", "interview-01-002", "singing-01-005"],
             "id00801": ["drama-01-001", "drama-01-002"]}
    seed = 100
    for spk, utts in {**dev, **evals}.items():
        for u in utts:
            seed += 1
            write_audio(cn1 / "data" / spk / f"{u}.flac", 0.4, seed=seed)
    (cn1 / "dev").mkdir()
    (cn1 / "dev" / "dev.lst").write_text("id00001\nid00002\n")
    for spk in evals:
        write_audio(cn1 / "eval" / "enroll" / f"{spk}-enroll.flac", 0.6, seed=seed + 1)
    write_audio(cn1 / "eval" / "test" / "id00800-singing-01-005.flac", 0.4, seed=501)
    write_audio(cn1 / "eval" / "test" / "id00801-drama-01-002.flac", 0.4, seed=502)
    lists = cn1 / "eval" / "lists"
    lists.mkdir(parents=True)
    (lists / "enroll.lst").write_text("id00800-enroll enroll/id00800-enroll.wav\nid00801-enroll enroll/id00801-enroll.wav\n")
    (lists / "enroll.map").write_text(
        "id00800-enroll id00800/interview-01-001.wav id00800/interview-01-002.wav\n"
        "id00801-enroll id00801-drama-01-001.wav\n")
    (lists / "trials.lst").write_text(
        "id00800-enroll test/id00800-singing-01-005.wav 1\n"
        "id00800-enroll test/id00801-drama-01-002.wav 0\n"
        "id00801-enroll test/id00801-drama-01-002.wav 1\n")
    cn2 = tmp_path / "CN-Celeb2_flac"
    for k in range(1, 5):
        write_audio(cn2 / "data" / "id10001" / f"recitation-01-{k:03d}.flac", 0.3, seed=600 + k)
    write_audio(cn2 / "data" / "id10002" / "play-01-001.flac", 0.3, seed=700)
    (cn2 / "spk.lst").write_text("id10001\nid10002\n")
    return cn1, cn2


@pytest.fixture
def libri_tree(tmp_path):
    root = tmp_path / "LibriSpeech"
    spk = {"train-clean-100": {"19": {"198": 4, "227": 2}, "26": {"495": 3}},
           "test-clean": {"1089": {"134686": 3}, "121": {"121726": 3}, "237": {"126133": 2}}}
    seed = 900
    for subset, speakers in spk.items():
        for s, chapters in speakers.items():
            for ch, n in chapters.items():
                for k in range(n):
                    seed += 1
                    write_audio(root / subset / s / ch / f"{s}-{ch}-{k:04d}.flac", 0.3, seed=seed)
                (root / subset / s / ch / f"{s}-{ch}.trans.txt").write_text("")
    (root / "SPEAKERS.TXT").write_text(
        "; Some comments\n;ID  |SEX| SUBSET           |MINUTES| NAME\n"
        "19   | F | train-clean-100  | 25.19 | Kara Shallenberg\n"
        "26   | M | train-clean-100  | 25.08 | Denny Sayers\n"
        "121  | F | test-clean       |  7.75 | Nikki Sullivan\n"
        "237  | F | test-clean       |  8.02 | Kathy Caver | with a pipe\n"
        "1089 | M | test-clean       |  8.05 | Bob Neufeld\n")
    return tmp_path


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module of tiny-model runs (faster on a shared machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def recipe_module(name):
    """A script of recipes/ imported as a module (its functions, without running it)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "recipes" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_recipe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
