"""VoxCeleb1 / VoxCeleb2 from their on-disk layouts.

VoxCeleb1: ``wav/idXXXXX/<youtube_id>/NNNNN.wav`` or ``.flac`` (the ``.wav`` where both exist;
dev and test under one ``wav/``, or ``vox1_dev_wav/wav`` and ``vox1_test_wav/wav``), ``vox1_meta.csv`` (tab-separated, column
``Set`` dev/test) and trial lists ``veri_test2.txt`` (Vox1-O), ``list_test_hard2.txt`` (H),
``list_test_all2.txt`` (E), found in the root or ``meta/``.
VoxCeleb2: ``dev/aac/idXXXXX/<youtube_id>/NNNNN.m4a``, or the same tree converted to wav.

Utterance IDs are ``idXXXXX/<youtube_id>/NNNNN``, the trial lists' form without extension.
Vox1 test speakers never enter training; a trial list whose speakers overlap the training
set (E and H use Vox1 dev speakers) is refused with a clear error.
"""

import csv
from pathlib import Path

from ltspk.data.audio import M4A_HINT, probe
from ltspk.data.layout import scan_tree, strip_suffix
from ltspk.data.prepare import FileEntry, PrepOptions, finish_preparation
from ltspk.data.trials import read_voxceleb_trials
from ltspk.runtime.errors import DataError, HparamsError

VOX1_TEST_SPEAKERS = frozenset(f"id{n}" for n in range(10270, 10310))
TRIAL_LISTS = {"O": "veri_test2.txt", "H": "list_test_hard2.txt", "E": "list_test_all2.txt"}


def vox1_wav_roots(vox1):
    vox1 = Path(vox1)
    candidates = [vox1 / "wav", vox1 / "dev" / "wav", vox1 / "test" / "wav",
                  vox1 / "vox1_dev_wav" / "wav", vox1 / "vox1_test_wav" / "wav"]
    roots = [c for c in candidates if c.is_dir()]
    if not roots:
        raise DataError(vox1, "no VoxCeleb1 audio: expected wav/idXXXXX/<video>/NNNNN.wav "
                              "(or dev/wav, test/wav, vox1_dev_wav/wav, vox1_test_wav/wav)")
    return roots


def read_vox1_meta(path):
    """Speaker -> 'dev' | 'test' from ``vox1_meta.csv`` (tab-separated, header row)."""
    sets = {}
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
    except FileNotFoundError:
        raise DataError(path, "vox1_meta.csv not found") from None
    if not rows or "Set" not in [c.strip() for c in rows[0]]:
        raise DataError(path, "expected a tab-separated header with a 'Set' column")
    header = [c.strip() for c in rows[0]]
    i_id, i_set = 0, header.index("Set")
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) <= i_set:
            raise DataError(path, f"line {line_no}: expected {len(header)} tab-separated fields")
        sets[row[i_id].strip()] = row[i_set].strip().lower()
    return sets


def find_trial_list(vox1, name):
    """A trial list by short name (O/H/E), file name, or path."""
    name = TRIAL_LISTS.get(name, name)
    p = Path(name)
    if p.is_file():
        return p
    for c in (Path(vox1) / name, Path(vox1) / "meta" / name):
        if c.is_file():
            return c
    raise DataError(Path(vox1) / name, "trial list not found (looked in the VoxCeleb1 root and meta/)")


def video_of(rel):
    """The session of ``idXXXXX/<video>/NNNNN.wav``: its video (None where the path has no video folder)."""
    parts = rel.split("/")
    return parts[1] if len(parts) >= 3 else None


def _entries(root, rels, prefix_ok=None):
    out = []
    for rel in rels:
        spk = rel.split("/", 1)[0]
        if prefix_ok is None or prefix_ok(spk):
            out.append(FileEntry(strip_suffix(rel), spk, str(Path(root) / rel), video_of(rel)))
    return out


def _prefer_wav(rels):
    """One file per utterance: the .wav where both a .wav and a .flac exist."""
    chosen = {}
    for rel in rels:
        key = strip_suffix(rel)
        if key not in chosen or rel.endswith(".wav"):
            chosen[key] = rel
    return sorted(chosen.values())


def list_vox1(vox1):
    """(dev entries, test entries) of VoxCeleb1."""
    meta_path = Path(vox1) / "vox1_meta.csv"
    sets = read_vox1_meta(meta_path) if meta_path.is_file() else {}

    def is_test(spk):
        return sets.get(spk, "test" if spk in VOX1_TEST_SPEAKERS else "dev") == "test"

    dev, test = [], []
    for root in vox1_wav_roots(vox1):
        rels = _prefer_wav(scan_tree(root, {".wav", ".flac"}))  # a FLAC copy of the corpus is read too
        dev += _entries(root, rels, lambda s: not is_test(s))
        test += _entries(root, rels, is_test)
    return dev, test


def list_vox2_dev(vox2):
    """VoxCeleb2 dev entries; a converted ``.wav`` beside an ``.m4a`` is preferred."""
    vox2 = Path(vox2)
    roots = [r for r in (vox2 / "dev" / "aac", vox2 / "dev" / "wav", vox2 / "aac", vox2 / "wav") if r.is_dir()]
    if not roots:
        raise DataError(vox2, "no VoxCeleb2 dev audio: expected dev/aac/idXXXXX/<video>/NNNNN.m4a (or .wav)")
    chosen = {}
    for root in roots:
        for rel in scan_tree(root, {".wav", ".m4a"}):
            key = strip_suffix(rel)
            if key not in chosen or rel.endswith(".wav"):
                chosen[key] = (root, rel)
    m4a = [root / rel for root, rel in chosen.values() if rel.endswith(".m4a")]
    if m4a:
        try:
            probe(m4a[0])
        except DataError:
            raise DataError(m4a[0], f"{len(m4a)} VoxCeleb2 file(s) are .m4a and cannot be decoded here: {M4A_HINT}") from None
    return [FileEntry(k, k.split("/", 1)[0], str(root / rel), video_of(rel)) for k, (root, rel) in sorted(chosen.items())]


def prepare_voxceleb(save_folder, vox1_folder=None, vox2_folder=None, train_sets=None,
                     trial_list="O", options=None, corpus="voxceleb"):
    """Prepare VoxCeleb manifests (``corpus``: the name recorded, e.g. "synthetic" for the demo corpus
    written in VoxCeleb1's layout).

    train_sets: any of "vox1_dev", "vox2_dev" (default: every corpus given).
    trial_list: "O", "H", "E", a file name in the VoxCeleb1 root/meta, a path, or None.
    """
    options = options or PrepOptions()
    if train_sets is None:
        train_sets = [s for s, f in (("vox1_dev", vox1_folder), ("vox2_dev", vox2_folder)) if f]
    unknown = set(train_sets) - {"vox1_dev", "vox2_dev"}
    if unknown:
        raise HparamsError(f"unknown VoxCeleb training set(s) {sorted(unknown)}; use vox1_dev, vox2_dev")
    if ("vox1_dev" in train_sets or trial_list) and not vox1_folder:
        raise DataError(save_folder, "VoxCeleb1 is needed for vox1_dev training or VoxCeleb1 trials: give its root "
                                     "(--data_folder DIR)")
    if "vox2_dev" in train_sets and not vox2_folder:
        raise DataError(save_folder, "vox2_dev training needs the VoxCeleb2 root (--vox2_folder DIR); "
                                     "to train on VoxCeleb1 alone: --train_sets [vox1_dev]")

    vox1_dev, vox1_all = [], {}
    if vox1_folder:
        vox1_dev, vox1_test = list_vox1(vox1_folder)
        vox1_all = {e.id: e for e in vox1_dev + vox1_test}
    train = []
    if "vox1_dev" in train_sets:
        train += vox1_dev
    if "vox2_dev" in train_sets:
        train += list_vox2_dev(vox2_folder)

    trials, verification, source = [], [], ""
    if trial_list:
        source = find_trial_list(vox1_folder, trial_list)
        trials = read_voxceleb_trials(source)
        ids = sorted({i for t in trials for i in (t.enrol, t.test)})
        missing = [i for i in ids if i not in vox1_all]
        if missing:
            raise DataError(source, f"{len(missing)} trial utterance(s) not found under the VoxCeleb1 "
                                    f"audio, e.g. {', '.join(missing[:3])}")
        verification = [vox1_all[i] for i in ids]
    return finish_preparation(corpus, save_folder, train, verification, trials, options,
                              trials_source=source, meta={"train_sets": list(train_sets)})
