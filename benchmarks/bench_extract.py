#!/usr/bin/env python3
"""Embedding extraction: ltspk (length-sorted batches, inference mode) vs SpeechBrain's
EncoderClassifier.encode_batch, on the same exported model folder and the same files.

The model is an ECAPA-TDNN from an hparams file with random weights (speed does not depend on
the weights); the files are synthetic voices of 2..12 s. Printed: utterances/s, real-time
factor, ratios, and how far the embeddings agree (cosine to SpeechBrain's one-file-at-a-time
embeddings, which have no padding). Every method runs once untimed first (the CPU backend sets
up kernels for each new input shape once), then the methods are timed round-robin and the
median of --rounds is reported.

  python benchmarks/bench_extract.py [--hparams hparams/voxceleb_tde.yaml] [--files 64] [--batch 16]
"""

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from hyperpyyaml import load_hyperpyyaml

from ltspk.data.manifest import Utterance
from ltspk.data.pipeline import full_pipeline, load_dataset
from ltspk.data.synthetic import SAMPLE_RATE, apply_channel, random_channel, random_voice, utterance
from ltspk.embedding.cache import embed_dataset
from ltspk.embedding.embedders import ModuleEmbedder
from ltspk.runtime.atomic import write_text
from ltspk.train.export import export_yaml
from ltspk.train.layering import hparams_text

PLACEHOLDERS = {"data_folder": "unused", "vox2_folder": "unused", "cn2_folder": "unused"}


def make_model_folder(hparams_path, folder, n_classes=100):
    text = hparams_text(hparams_path)  # the whole configuration, its base files merged
    overrides = {k: v for k, v in PLACEHOLDERS.items() if f"{k}: !PLACEHOLDER" in text}
    overrides["output_folder"] = str(folder / "unused_run")
    h = load_hyperpyyaml(text, overrides)
    write_text(folder / "hyperparams.yaml", export_yaml(text, n_classes, overrides))
    torch.save(h["embedding_model"].state_dict(), folder / "embedding_model.ckpt")
    torch.save(h["classifier"](in_dim=h["emb_dim"], n_classes=n_classes).state_dict(), folder / "classifier.ckpt")
    enc = "".join(f"'spk{i}' => {i}\n" for i in range(n_classes)) + "================\n'starting_index' => 0\n"
    for name in ("label_encoder.txt", "label_encoder.ckpt"):
        write_text(folder / name, enc)


def make_files(folder, n, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = apply_channel(utterance(random_voice(rng), rng, rng.uniform(2, 12)), random_channel(rng), rng)
        path = folder / f"utt{i:04d}.wav"
        sf.write(path, x, SAMPLE_RATE, subtype="PCM_16")
        rows.append(Utterance(f"utt{i:04d}", len(x) / SAMPLE_RATE, str(path), 0, len(x), "s"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hparams", default="hparams/voxceleb_tde.yaml")
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (interleaved), median reported")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    from speechbrain.inference.speaker import EncoderClassifier

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "model").mkdir()
        (tmp / "audio").mkdir()
        make_model_folder(a.hparams, tmp / "model")
        rows = make_files(tmp / "audio", a.files)
        audio_s = sum(u.duration for u in rows)
        enc = EncoderClassifier.from_hparams(source=str(tmp / "model"), savedir=str(tmp / "sb"),
                                             run_opts={"device": a.device})
        print(f"device {a.device} ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
              f"threads {torch.get_num_threads()}; model from {a.hparams}; {a.files} files, {audio_s:.0f} s of audio")

        def load(u):
            return torch.from_numpy(sf.read(u.wav, dtype="float32")[0])

        def sb_single():
            with torch.inference_mode():
                return np.stack([enc.encode_batch(load(u)[None]).reshape(-1).cpu().numpy() for u in rows])

        def sb_batched():
            out = []
            with torch.inference_mode():
                for i in range(0, len(rows), a.batch):
                    w = [load(u) for u in rows[i : i + a.batch]]
                    n = max(x.numel() for x in w)
                    batch = torch.stack([torch.nn.functional.pad(x, (0, n - x.numel())) for x in w])
                    lens = torch.tensor([x.numel() / n for x in w])
                    out.append(enc.encode_batch(batch, lens).reshape(len(w), -1).cpu().numpy())
            return np.concatenate(out)

        # ltspk: the code path of recipes/extract.py
        embedder = ModuleEmbedder({k: enc.mods[k] for k in ("compute_features", "mean_var_norm", "embedding_model")},
                                  a.device)

        def ltspk(bs):
            def go():
                ds = load_dataset(None, full_pipeline(16000), rows=rows).filtered_sorted(sort_key="duration")
                ids, e = embed_dataset(embedder, ds, batch_size=bs, progress=False)
                order = {u: i for i, u in enumerate(ids)}
                return e[[order[u.ID] for u in rows]]
            return go

        methods = {
            "SpeechBrain encode_batch, one file at a time": sb_single,
            f"SpeechBrain encode_batch, batches of {a.batch} in file order": sb_batched,
            "ltspk extract, batch 1": ltspk(1),
            f"ltspk extract, length-sorted batches of {a.batch}": ltspk(a.batch),
        }
        # one untimed pass each first: the CPU backend sets up kernels per new input shape once
        embs = {name: f() for name, f in methods.items()}
        times = {name: [] for name in methods}
        for _ in range(a.rounds):
            for name, f in methods.items():
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
        results = {name: float(np.median(v)) for name, v in times.items()}
        ref = embs["SpeechBrain encode_batch, one file at a time"]
        base = results["SpeechBrain encode_batch, one file at a time"]

        def agree(e):
            c = (e * ref).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(ref, axis=1)
            return c.min(), np.abs(e - ref).max()

        print(f"\n{'method':<58} {'utts/s':>8} {'RTF':>8} {'speed-up':>9} {'min cos':>9} {'max |diff|':>11}")
        for name, secs in results.items():
            c, d = agree(embs[name])
            print(f"{name:<58} {len(rows) / secs:>8.2f} {secs / audio_s:>8.4f} {base / secs:>9.2f} {c:>9.6f} {d:>11.2e}")


if __name__ == "__main__":
    main()
