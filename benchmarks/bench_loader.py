#!/usr/bin/env python3
"""Data pipeline: utterances/s the training loader delivers (random crops from WAV and FLAC,
0/2/4 workers) against the utterances/s the model consumes, measured in one run.

  python benchmarks/bench_loader.py [--files 128] [--batch 32] [--crop 3] [--channels 1024]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization

from ltspk.data.manifest import Utterance
from ltspk.data.pipeline import crop_pipeline, load_dataset
from ltspk.heads import AAMHead


def make_files(folder, n, fmt, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        secs = rng.uniform(4, 12)  # VoxCeleb-like lengths
        t = np.arange(int(secs * 16000)) / 16000
        x = (0.3 * np.sin(2 * np.pi * rng.uniform(90, 250) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        path = folder / f"u{i:04d}.{fmt}"
        sf.write(path, x, 16000, subtype="PCM_16")
        rows.append(Utterance(f"u{i:04d}", secs, str(path), 0, x.size, f"s{i % 8}"))
    return rows


def loader_rate(rows, workers, batch, crop, batches):
    enc = CategoricalEncoder()
    enc.update_from_iterable([u.spk_id for u in rows])
    enc.expect_len(len(enc.lab2ind))
    ds = load_dataset(None, crop_pipeline(16000, crop), enc, rows=rows)
    loader = sb.dataio.dataloader.make_dataloader(ds, batch_size=batch, num_workers=workers, shuffle=True,
                                                  drop_last=True, persistent_workers=workers > 0)
    it, n, t = iter(loader), 0, None
    while n < batches:
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        if t is None:  # start after the first batch: worker start-up is not throughput
            t = time.perf_counter()
            continue
        n += 1
        assert b.sig.data.shape[1] == int(crop * 16000)
    return n * batch / (time.perf_counter() - t)


def model_rate(batch, crop, channels, steps=3):
    model = ECAPA_TDNN(80, channels=[channels] * 4 + [3 * channels], lin_neurons=192).train()
    head = AAMHead(192, 7205)
    fb, nm = Fbank(n_mels=80), InputNormalization(norm_type="sentence", std_norm=False)
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()))
    wavs, lens, labels = torch.randn(batch, int(crop * 16000)), torch.ones(batch), torch.randint(0, 7205, (batch,))
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        loss = F.cross_entropy(head(model(nm(fb(wavs), lens), lens).reshape(batch, -1), labels), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    return batch / float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=float, default=3.0)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--channels", type=int, default=1024, help="ECAPA channels of the consuming model")
    a = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {a.batch} x {a.crop} s crops "
          f"from {a.files} files of 4..12 s")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("wav", "flac"):
            folder = Path(tmp) / fmt
            folder.mkdir()
            rows = make_files(folder, a.files, fmt)
            for w in (0, 2, 4):
                print(f"loader  {fmt:<4} workers {w}: {loader_rate(rows, w, a.batch, a.crop, a.batches):>8.1f} utts/s")
    rate = model_rate(a.batch, a.crop, a.channels)
    print(f"model   ECAPA C={a.channels} + AAM (7205 speakers) train step on this device: {rate:>8.1f} utts/s")


if __name__ == "__main__":
    main()
