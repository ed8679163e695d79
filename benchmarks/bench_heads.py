#!/usr/bin/env python3
"""Training step time per head on the same ECAPA-TDNN and batch, and how it grows with speakers.

A step is Fbank -> mean norm -> ECAPA -> head -> cross-entropy -> backward -> Adam step, the
work SpeakerBrain.fit_batch does. The heads are timed round-robin (interleaved, so machine
noise hits all alike); medians and ratios to AAM are printed, for each number of speakers.
The head alone (forward + backward on fixed embeddings) is timed too, to show what the head
itself costs. Epoch times for VoxCeleb sizes are ESTIMATES: measured step time x steps.

  python benchmarks/bench_heads.py [--classes 1211 7205] [--channels 512] [--batch 32] [--seconds 2]
                                  [--precision fp32 bf16]

With --precision bf16 the forward pass runs under torch.autocast(bfloat16), as SpeechBrain's
``--precision bf16`` does; the loss is computed in float32.
"""

import argparse
import math
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization

from ltspk.heads import AAMHead, CausalNormHead, CosineHead, SoftmaxHead

HEADS = {
    "aam": lambda d, c: AAMHead(d, c, margin=0.2, scale=30),
    "causal_norm_k2": lambda d, c: CausalNormHead(d, c, num_heads=2),
    "aam_logit_adjusted": lambda d, c: AAMHead(d, c, margin=0.2, scale=30, la_tau=1.0),
    "softmax": lambda d, c: SoftmaxHead(d, c),
    "cosine": lambda d, c: CosineHead(d, c),
}


def measure(a, dev, n_classes, fbank, norm, wavs, lens, sync, precision="fp32"):
    """Interleaved full-step and head-only times (seconds) per head, for one number of speakers."""
    model = ECAPA_TDNN(80, channels=[a.channels] * 4 + [3 * a.channels], lin_neurons=a.emb).to(dev).train()
    heads = {k: f(a.emb, n_classes).to(dev).train() for k, f in HEADS.items()}
    counts = torch.randint(1, 500, (n_classes,)).tolist()
    for h in heads.values():
        h.set_priors(counts)
    opts = {k: torch.optim.Adam(list(model.parameters()) + list(h.parameters()), lr=1e-3) for k, h in heads.items()}
    labels = torch.randint(0, n_classes, (a.batch,), device=dev)
    emb_fixed = torch.randn(a.batch, a.emb, device=dev)

    amp = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step(k):
        with torch.autocast(**amp):
            feats = norm(fbank(wavs), lens)
            logits = heads[k](model(feats, lens).reshape(a.batch, -1), labels)
        loss = F.cross_entropy(logits.float(), labels)
        opts[k].zero_grad(set_to_none=True)
        loss.backward()
        opts[k].step()

    def head_only(k):
        x = emb_fixed.clone().requires_grad_(True)
        with torch.autocast(**amp):
            logits = heads[k](x, labels)
        F.cross_entropy(logits.float(), labels).backward()

    full = {k: [] for k in heads}
    head = {k: [] for k in heads}
    for k in heads:  # warm-up
        step(k)
        head_only(k)
    for _ in range(a.rounds):
        for k in heads:
            sync()
            t = time.perf_counter()
            step(k)
            sync()
            full[k].append(time.perf_counter() - t)
            t = time.perf_counter()
            for _ in range(10):
                head_only(k)
            sync()
            head[k].append((time.perf_counter() - t) / 10)
    return full, head


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, nargs="+", default=[1211, 7205])
    ap.add_argument("--channels", type=int, default=512, help="ECAPA channels (1024 in the recipes)")
    ap.add_argument("--emb", type=int, default=192)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    print(f"device {dev} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"ECAPA channels {a.channels}, embedding {a.emb}, batch {a.batch} x {a.seconds} s, {a.rounds} rounds\n")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    fbank, norm = Fbank(n_mels=80).to(dev), InputNormalization(norm_type="sentence", std_norm=False).to(dev)
    wavs = torch.randn(a.batch, int(a.seconds * 16000), device=dev)
    lens = torch.ones(a.batch, device=dev)
    for precision in a.precision:
        for n_classes in a.classes:
            report(a, precision, n_classes, *measure(a, dev, n_classes, fbank, norm, wavs, lens, sync, precision))


def report(a, precision, n_classes, full, head):
    base = statistics.median(full["aam"])
    print(f"speakers {n_classes}, {precision}")
    print(f"  {'head':<20} {'step ms':>9} {'x AAM':>7} {'head-only ms':>13} {'head share %':>13}")
    for k in full:
        m, hm = statistics.median(full[k]), statistics.median(head[k])
        print(f"  {k:<20} {1000 * m:>9.1f} {m / base:>7.3f} {1000 * hm:>13.2f} {100 * hm / m:>13.1f}")
    for name, n_utts in (("VoxCeleb1 dev", 148_642), ("VoxCeleb2 dev", 1_092_009)):
        steps = math.ceil(n_utts / a.batch)
        print(f"  estimated epoch on {name} ({n_utts} utts, {steps} steps) with AAM: {steps * base / 3600:.2f} h")
    print()


if __name__ == "__main__":
    main()
