#!/usr/bin/env python3
"""Embeddings of a trained run for any manifest or folder of audio; export a SpeechBrain model folder.

  python recipes/extract.py HPARAMS --output_folder RUN (--manifest CSV | --audio-dir DIR) --out emb.npz [--ark emb.ark]
  python recipes/extract.py HPARAMS --output_folder RUN --export-model MODEL_DIR

The .npz holds ``ids`` (unicode) and ``embeddings`` (float32 [N, D]), no pickle. MODEL_DIR loads
with speechbrain.inference.speaker.EncoderClassifier.from_hparams(source=MODEL_DIR).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltspk.errors import LtspkError  # noqa: E402


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", help="a SpeechBrain CSV manifest (ID,duration,wav,start,stop,spk_id)")
    ap.add_argument("--audio-dir", help="a folder of .wav/.flac/.ogg files (searched recursively)")
    ap.add_argument("--out", help="output .npz")
    ap.add_argument("--ark", help="also write Kaldi ark/scp (needs kaldiio)")
    ap.add_argument("--export-model", help="write a SpeechBrain model folder here")
    ap.add_argument("--batch-size", type=int,
                    help="utterances a batch (default: 1 on CPU, where padding only costs time; 16 on GPU)")
    a, rest = ap.parse_known_args(argv)
    if not (a.export_model or (a.out and (a.manifest or a.audio_dir))):
        ap.error("give --export-model, or --out with --manifest or --audio-dir")
    from ltspk.evaluate import embed_manifest
    from ltspk.experiment import trained_experiment

    exp, hparams_file, overrides = trained_experiment(rest)
    hparams = exp.hparams
    if a.export_model:
        from ltspk.export import export_model_folder

        print("model folder:", export_model_folder(exp, a.export_model, Path(hparams_file).read_text(), overrides))
    if a.out:
        from ltspk.embeddings_io import save_embeddings

        batch = a.batch_size or (1 if str(exp.brain.device).startswith("cpu") else 16)
        h = dict(hparams, eval_batch_size=batch)
        rows, bad = None, []
        if a.audio_dir:
            from ltspk.audio_folder import folder_rows

            rows, bad = folder_rows(a.audio_dir)
            for p, why in bad:
                print(f"skipped {p}: {why}", file=sys.stderr)
        ids, emb = embed_manifest(exp.brain, a.manifest or a.audio_dir, h, True, rows=rows)
        save_embeddings(a.out, ids, emb)
        print(f"{len(ids)} embeddings of dimension {emb.shape[1]} -> {a.out}")
        if a.ark:
            from ltspk.export import write_kaldi

            print("kaldi:", *write_kaldi(a.ark, ids, emb))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (LtspkError, RuntimeError) as e:
        sys.exit(f"error: {e}")
