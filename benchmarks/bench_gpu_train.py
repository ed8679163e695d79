#!/usr/bin/env python3
"""Is the loader starving the GPU? Training steps/s and GPU utilisation with the real training
loader (random crops read from audio files, ``num_workers`` 0..N, pinned memory) against the
same step on one batch that already sits on the GPU (the ceiling), for fp32 and bf16.
Then embedding extraction (whole utterances, inference mode) in fp32 and bf16.

The step is what ``SpeakerBrain.fit_batch`` does: Fbank -> mean norm -> ECAPA-TDNN -> AAM head
-> cross-entropy (float32) -> backward -> Adam step, and the loss read back to the host every
step (SpeechBrain's Brain does that for its running average). GPU utilisation is NVML's
"percent of time a kernel was running", sampled every 20 ms while the timed steps run.

  python benchmarks/bench_gpu_train.py [--files 512] [--workers 0 4 8] [--precision fp32 bf16]
                                       [--channels 1024] [--classes 5994] [--batch 32] [--crop 3]
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
import torch.nn.functional as F
from bench_loader import make_files  # the script's own folder is on sys.path when it runs
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization

from ltspk.data.pipeline import crop_pipeline, load_dataset
from ltspk.heads import AAMHead


class Utilisation:
    """Mean NVML GPU utilisation over the ``with`` block (None when NVML is unavailable)."""

    def __init__(self, index=0, period=0.02):
        self.period, self.samples, self.handle = period, [], None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml, self.handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:  # noqa: BLE001 (no NVML: report none)
            pass

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
            time.sleep(self.period)

    def __enter__(self):
        if self.handle is not None:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            self._stop.set()
            self._thread.join()

    @property
    def mean(self):
        return statistics.mean(self.samples) if self.samples else None


def build(a, dev):
    model = ECAPA_TDNN(80, channels=[a.channels] * 4 + [3 * a.channels], attention_channels=128,
                       lin_neurons=192).to(dev).train()
    head = AAMHead(192, a.classes, margin=0.2, scale=30).to(dev).train()
    fbank, norm = Fbank(n_mels=80).to(dev), InputNormalization(norm_type="sentence", std_norm=False).to(dev)
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=1e-3)
    return model, head, fbank, norm, opt


def make_step(parts, dev, precision):
    model, head, fbank, norm, opt = parts
    amp = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step(wavs, lens, labels):
        with torch.autocast(**amp):
            emb = model(norm(fbank(wavs), lens), lens)
            logits = head(emb.reshape(emb.shape[0], -1), labels)
        loss = F.cross_entropy(logits.float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def ceiling(a, dev, step):
    wavs = torch.randn(a.batch, int(a.crop * 16000), device=dev)
    lens, labels = torch.ones(a.batch, device=dev), torch.randint(0, a.classes, (a.batch,), device=dev)
    for _ in range(5):
        step(wavs, lens, labels)
    torch.cuda.synchronize(dev)
    with Utilisation() as u:
        t = time.perf_counter()
        for _ in range(a.steps):
            step(wavs, lens, labels)
        torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t
    return a.steps / dt, u.mean, 0.0


def with_loader(a, dev, step, rows, enc, workers):
    ds = load_dataset(None, crop_pipeline(16000, a.crop), enc, rows=rows)
    loader = sb.dataio.dataloader.make_dataloader(ds, batch_size=a.batch, num_workers=workers, shuffle=True,
                                                  drop_last=True, pin_memory=True,
                                                  persistent_workers=workers > 0)
    it = iter(loader)

    def next_batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(loader)
            return next(it)

    def run(n):
        waited = 0.0
        for _ in range(n):
            t = time.perf_counter()
            b = next_batch().to(dev, non_blocking=True)
            waited += time.perf_counter() - t
            wavs, lens = b.sig
            step(wavs, lens, b.spk_id_encoded.data.reshape(-1) % a.classes)
        return waited

    run(5)  # worker start-up and the first batches are not throughput
    torch.cuda.synchronize(dev)
    with Utilisation() as u:
        t = time.perf_counter()
        waited = run(a.steps)
        torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t
    return a.steps / dt, u.mean, waited / dt


def extraction(a, dev, parts, precision, lengths):
    model, _, fbank, norm, _ = parts
    model.eval()
    wavs = [torch.randn(1, int(s * 16000), device=dev) for s in lengths]
    amp = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    out = []
    with torch.inference_mode(), torch.autocast(**amp):
        for w in wavs[:3]:
            model(norm(fbank(w), torch.ones(1, device=dev)))
        torch.cuda.synchronize(dev)
        t = time.perf_counter()
        for w in wavs:
            out.append(model(norm(fbank(w), torch.ones(1, device=dev))).float().reshape(-1))
        torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t
    model.train()
    return len(wavs) / dt, sum(lengths) / dt, torch.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=512)
    ap.add_argument("--format", default="flac", choices=["wav", "flac"])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 4, 8])
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--channels", type=int, default=1024)
    ap.add_argument("--classes", type=int, default=5994)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=float, default=3.0)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--extract", type=int, default=64, help="utterances of 2..20 s for the extraction timing")
    ap.add_argument("--device", default="cuda:0")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu_train.py needs a CUDA GPU (use bench_heads.py / bench_loader.py on a CPU)")
    dev = torch.device(a.device)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = False
    print(f"device {torch.cuda.get_device_name(dev)}, torch {torch.__version__}, speechbrain {sb.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"ECAPA C={a.channels}, AAM over {a.classes} speakers, batch {a.batch} x {a.crop} s crops; "
          f"{a.files} {a.format} files of 4..12 s; {a.steps} timed steps\n")
    with tempfile.TemporaryDirectory() as tmp:
        rows = make_files(Path(tmp), a.files, a.format)
        enc = CategoricalEncoder()
        enc.update_from_iterable([u.spk_id for u in rows])
        enc.expect_len(len(enc.lab2ind))
        print(f"{'precision':<10} {'input':<22} {'steps/s':>8} {'utts/s':>8} {'GPU util %':>11} "
              f"{'waiting on loader %':>20} {'x ceiling':>10}")
        lengths = list(np.random.default_rng(0).uniform(2, 20, a.extract))
        extracted = {}
        for precision in a.precision:
            torch.manual_seed(0)
            parts = build(a, dev)
            step = make_step(parts, dev, precision)
            top, util, _ = ceiling(a, dev, step)
            lines = [("batch already on GPU", top, util, 0.0)]
            for w in a.workers:
                lines.append((f"loader, {w} workers", *with_loader(a, dev, step, rows, enc, w)))
            for name, rate, util, wait in lines:
                u = "-" if util is None else f"{util:.0f}"
                print(f"{precision:<10} {name:<22} {rate:>8.2f} {rate * a.batch:>8.0f} {u:>11} {100 * wait:>20.0f} "
                      f"{rate / top:>10.2f}")
            torch.manual_seed(1)
            parts = build(a, dev)  # same weights for both precisions (same seed)
            extracted[precision] = extraction(a, dev, parts, precision, lengths)
            del parts, step
            torch.cuda.empty_cache()
        print(f"\nextraction, one utterance at a time, {a.extract} utterances of 2..20 s (random weights):")
        for precision, (ups, sps, _) in extracted.items():
            print(f"  {precision:<6} {ups:8.1f} utts/s  {sps:8.0f} s of audio/s")
        if {"fp32", "bf16"} <= set(extracted):
            e32, e16 = extracted["fp32"][2], extracted["bf16"][2]
            cos = F.cosine_similarity(e32, e16, dim=1)
            print(f"  bf16 vs fp32 embeddings: cosine min {cos.min():.5f}, mean {cos.mean():.5f}")


if __name__ == "__main__":
    main()
