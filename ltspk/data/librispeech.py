"""LibriSpeech from its on-disk layout.

``LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<NNNN>.flac``, with
``SPEAKERS.TXT`` (``;`` comments, ``ID | SEX | SUBSET | MINUTES | NAME``). There are no
official verification trials: they are generated, with a fixed seed, from speakers of
held-out subsets (default test-clean), and the list is written with the manifests.
IDs: ``<speaker>/<chapter>/<speaker>-<chapter>-<NNNN>``.
"""

from pathlib import Path

from ltspk.data.layout import scan_tree, strip_suffix
from ltspk.data.prepare import FileEntry, PrepOptions, finish_preparation
from ltspk.data.trials import generate_trials
from ltspk.runtime.errors import DataError


def read_speakers_txt(path):
    """Speaker -> {sex, subset, minutes, name} from SPEAKERS.TXT."""
    speakers = {}
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "SPEAKERS.TXT not found") from None
    with f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) < 5:
                raise DataError(path, f"line {line_no}: expected 'ID | SEX | SUBSET | MINUTES | NAME'")
            try:
                minutes = float(parts[3])
            except ValueError:
                raise DataError(path, f"line {line_no}: MINUTES {parts[3]!r} is not a number") from None
            speakers[parts[0]] = {"sex": parts[1], "subset": parts[2], "minutes": minutes,
                                  "name": "|".join(parts[4:])}
    return speakers


def librispeech_root(folder):
    folder = Path(folder)
    return folder / "LibriSpeech" if (folder / "LibriSpeech").is_dir() else folder


def list_subset(root, subset):
    d = Path(root) / subset
    if not d.is_dir():
        raise DataError(d, f"LibriSpeech subset {subset!r} not found")
    rels = scan_tree(d, {".flac", ".wav"}, depth=3)
    if not rels:
        raise DataError(d, "no <speaker>/<chapter>/<speaker>-<chapter>-<NNNN>.flac files")
    # the session of <speaker>/<chapter>/<file> is its chapter
    return [FileEntry(strip_suffix(rel), rel.split("/", 1)[0], str(d / rel), rel.split("/")[1] if rel.count("/") >= 2 else None)
            for rel in rels]


def prepare_librispeech(save_folder, data_folder, train_subsets=("train-clean-100",),
                        trial_subsets=("test-clean",), n_trials=20000, options=None):
    options = options or PrepOptions()
    root = librispeech_root(data_folder)
    speakers_txt = root / "SPEAKERS.TXT"
    speakers = read_speakers_txt(speakers_txt) if speakers_txt.is_file() else {}
    train = [e for s in train_subsets for e in list_subset(root, s)]
    verification = [e for s in trial_subsets for e in list_subset(root, s)]
    unknown = sorted({e.spk_id for e in train + verification} - set(speakers)) if speakers else []
    if unknown:
        raise DataError(speakers_txt, f"speaker(s) {', '.join(unknown[:5])} on disk but not in SPEAKERS.TXT")
    trials = []
    if verification:
        trials = generate_trials({e.id: e.spk_id for e in verification}, n_trials, seed=options.seed)
        used = {i for t in trials for i in (t.enrol, t.test)}
        verification = [e for e in verification if e.id in used]
    meta = {"train_subsets": list(train_subsets), "trial_subsets": list(trial_subsets),
            "trials": f"generated, seed {options.seed}",
            "sex": {s: v["sex"] for s, v in speakers.items()
                    if s in {e.spk_id for e in train}}}
    return finish_preparation("librispeech", save_folder, train, verification, trials, options,
                              trials_source=f"generated from {', '.join(trial_subsets)}", meta=meta)
