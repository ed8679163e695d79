#!/usr/bin/env python3
"""Embeddings of a trained run for any manifest or folder of audio; export a SpeechBrain model folder.

  python recipes/extract.py RUN_DIR (--manifest CSV | --audio_dir DIR) --out emb.npz [--ark emb.ark]
                            [--batch_size N] [--on_bad_file skip|raise]
  python recipes/extract.py RUN_DIR --export_model MODEL_DIR
  (or HPARAMS --output_folder RUN_DIR [--data_folder ...] [--any_key VALUE] in place of RUN_DIR)

The .npz holds ``ids`` (unicode) and ``embeddings`` (float32 [N, D]), no pickle. MODEL_DIR loads
with speechbrain.inference.speaker.EncoderClassifier.from_hparams(source=MODEL_DIR).

With --audio_dir every file is checked first, as preparation checks a corpus: unusable files
(unreadable, empty, NaN/inf or silent samples, shorter than the run's min_seconds, broken
or looping symbolic links) are skipped and listed with the reason on stderr and in
OUT.bad_files.txt (--on_bad_file raise: stop at the first instead). Two files with one ID
(a.wav and a.flac in one folder) are an error naming both.

Options are spelled as the other recipes' (underscores); the older dashed spellings (--audio-dir,
--export-model, --on-bad-file, --batch-size) still work. Any other --key VALUE overrides that
hparams key, as in recipes/train.py.
"""

import argparse
import sys
from pathlib import Path

from ltspk.cli.entry import run
from ltspk.cli.help import DefaultsHelpFormatter


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter,
                                 usage="%(prog)s RUN_DIR|HPARAMS [--key VALUE ...] [options]")
    ap.add_argument("--manifest", metavar="CSV",
                    help="a SpeechBrain CSV manifest (ID,duration,wav,start,stop,spk_id) to embed")
    ap.add_argument("--audio_dir", "--audio-dir", metavar="DIR",
                    help="a folder of .wav/.flac/.ogg files to embed (searched recursively)")
    ap.add_argument("--out", metavar="NPZ", help="output .npz of the embeddings")
    ap.add_argument("--ark", metavar="ARK", help="also write Kaldi ark/scp here (needs kaldiio)")
    ap.add_argument("--export_model", "--export-model", metavar="DIR",
                    help="write a SpeechBrain model folder here (EncoderClassifier.from_hparams)")
    ap.add_argument("--on_bad_file", "--on-bad-file", choices=("skip", "raise"), default="skip",
                    help="--audio_dir: skip unusable files (listed in OUT.bad_files.txt) or stop at the first")
    ap.add_argument("--batch_size", "--batch-size", type=int, metavar="N",
                    help="utterances a batch; None: 1 on CPU, where padding only costs time, 16 on GPU")
    return ap


def main(argv):
    ap = parser()
    a, rest = ap.parse_known_args(argv)
    if not (a.export_model or (a.out and (a.manifest or a.audio_dir))):
        ap.error("give --export_model, or --out with --manifest or --audio_dir")
    from ltspk.embedding.cache import embed_manifest
    from ltspk.train.experiment import trained_experiment
    from ltspk.train.layering import hparams_text
    from ltspk.train.run_folder import run_folder_argument

    exp, hparams_file, overrides = trained_experiment(run_folder_argument(rest))
    hparams = exp.hparams
    if a.export_model:
        from ltspk.train.export import export_model_folder

        text = hparams_text(hparams_file)  # the whole configuration: a file's base: files merged under it
        print("model folder:", export_model_folder(exp, a.export_model, text, overrides))
    if a.out:
        from ltspk.embedding.tables import save_embeddings

        batch = a.batch_size or (1 if str(exp.brain.device).startswith("cpu") else 16)
        h = dict(hparams, eval_batch_size=batch)
        rows = None
        if a.audio_dir:
            rows = audio_dir_rows(a.audio_dir, hparams, a.on_bad_file, Path(a.out).with_suffix(".bad_files.txt"))
        ids, emb = embed_manifest(exp.embedder(), a.manifest or a.audio_dir, h, exp.shows_progress, rows=rows)
        save_embeddings(a.out, ids, emb)
        print(f"{len(ids)} embeddings of dimension {emb.shape[1]} -> {a.out}")
        if a.ark:
            from ltspk.train.export import write_kaldi

            print("kaldi:", *write_kaldi(a.ark, ids, emb))


def audio_dir_rows(folder, hparams, on_bad_file, bad_list):
    """Rows of the usable files below ``folder``; the bad ones listed (stderr and ``bad_list``) or raised."""
    from ltspk.data.audio import refuse_bad_files
    from ltspk.data.audio_folder import folder_rows
    from ltspk.data.prepare import PrepOptions
    from ltspk.runtime.atomic import write_text
    from ltspk.runtime.errors import DataError

    min_seconds = hparams.get("min_seconds")  # the flat key; run folders made before it hold prep_options
    if min_seconds is None:
        nested = hparams.get("prep_options")
        min_seconds = nested.get("min_seconds") if isinstance(nested, dict) else getattr(nested, "min_seconds", None)
    if min_seconds is None:
        min_seconds = PrepOptions.min_seconds
    rows, bad = folder_rows(folder, min_seconds=min_seconds)
    refuse_bad_files(bad, on_bad_file)
    write_text(bad_list, "".join(f"{p}\t{why}\n" for p, why in bad))
    for p, why in bad[:20]:
        print(f"skipped {p}: {why}", file=sys.stderr)
    if bad:
        print(f"{len(bad)} bad file(s) skipped, listed in {bad_list}", file=sys.stderr)
    if not rows:
        raise DataError(folder, f"no usable audio: all {len(bad)} file(s) are bad (see {bad_list})")
    return rows


if __name__ == "__main__":
    run(main)
