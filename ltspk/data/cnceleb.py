"""CN-Celeb1 / CN-Celeb2 from their on-disk layouts.

CN-Celeb1 (``CN-Celeb_flac``): ``data/idXXXXX/<genre>-<session>-<utt>.flac``, dev speakers
in ``dev/dev.lst`` (else every speaker below id00800), evaluation in ``eval/enroll``,
``eval/test`` and ``eval/lists/{enroll.lst, enroll.map, trials.lst}``. The lists name
``.wav`` even in the flac release: extensions are mapped to what is on disk.
CN-Celeb2 (``CN-Celeb2_flac``): ``data/id1XXXX/<genre>-<session>-<utt>.flac``, ``spk.lst``.

IDs: training ``idXXXXX/<genre>-<session>-<utt>``; enrolment ``idXXXXX-enroll`` (the
concatenated enrolment audio); test ``test/idXXXXX-<genre>-<session>-<utt>``.
``enrol_map.json`` lists each enrolment's source utterances, for the protocol that
averages utterance embeddings instead of using the concatenated audio.

With ``concat_min_seconds`` the short training clips of one speaker and one genre are
concatenated into new utterances of at least that length, following WeSpeaker's CN-Celeb v2
recipe (CN-Celeb has many clips under 2 s): see ``ltspk.data.concat``. Only training audio
(CN-Celeb1 dev, CN-Celeb2) is concatenated; the evaluation audio is used as it is.
"""

import functools
from pathlib import Path

from ltspk.data.concat import check_min_seconds, concat_short_clips
from ltspk.data.layout import scan_tree, strip_suffix
from ltspk.data.prepare import FileEntry, PrepOptions, finish_preparation
from ltspk.data.trials import read_cnceleb_trials, strip_ext
from ltspk.runtime.errors import DataError, HparamsError

AUDIO_EXTS = (".flac", ".wav")
FIRST_EVAL_SPEAKER = "id00800"


def _read_list(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        raise DataError(path, "list not found") from None


def _on_disk(base, rel):
    """Map a listed file (often ``.wav``) to the file on disk (``.flac`` or ``.wav``)."""
    stem = Path(base) / strip_ext(rel)
    for ext in AUDIO_EXTS:
        if stem.with_suffix(ext).is_file():
            return str(stem.with_suffix(ext))
    return None


def genre_session(rel):
    """The session of ``idXXXXX/<genre>-<session>-<utt>.flac``: ``<genre>-<session>`` (None for another name)."""
    stem = strip_suffix(rel).rsplit("/", 1)[-1]
    parts = stem.split("-")
    return "-".join(parts[:2]) if len(parts) >= 3 and all(parts[:2]) else None


def _data_entries(data_dir, keep):
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(data_dir, "no data/ folder: expected data/idXXXXX/<genre>-<session>-<utt>.flac")
    out = []
    for rel in scan_tree(data_dir, set(AUDIO_EXTS), depth=2):
        spk = rel.split("/", 1)[0]
        if keep(spk):
            out.append(FileEntry(strip_suffix(rel), spk, str(data_dir / rel), genre_session(rel)))
    return out


def cn1_dev_speakers(cn1):
    lst = Path(cn1) / "dev" / "dev.lst"
    if lst.is_file():
        return {parts[0] for parts in _read_list(lst)}
    return None


def _source_utterance_id(token):
    """enroll.map tokens: ``id00800/singing-01-001(.wav)`` or ``id00800-singing-01-001(.wav)``."""
    token = strip_ext(token)
    if "/" in token:
        return token
    spk, _, rest = token.partition("-")
    return f"{spk}/{rest}"


def list_cn1_eval(cn1):
    """(verification entries, trials, enrol_map, trials path) of CN-Celeb1's evaluation."""
    cn1 = Path(cn1)
    ev, lists = cn1 / "eval", cn1 / "eval" / "lists"
    trials_path = lists / "trials.lst"
    trials = read_cnceleb_trials(trials_path)
    entries = {}
    enroll_lst = lists / "enroll.lst"
    for line_no, parts in enumerate(_read_list(enroll_lst), start=1):
        if len(parts) != 2:
            raise DataError(enroll_lst, f"line {line_no}: expected '<enrol_id> enroll/<file>'")
        path = _on_disk(ev, parts[1])
        if path is None:
            raise DataError(ev / parts[1], f"enrolment audio listed in {enroll_lst} not found (.flac or .wav)")
        entries[parts[0]] = FileEntry(parts[0], parts[0].split("-", 1)[0], path)
    for t in trials:
        if t.enrol not in entries:
            raise DataError(trials_path, f"enrolment {t.enrol!r} is not in {enroll_lst}")
        if t.test not in entries:
            path = _on_disk(ev, t.test)
            if path is None:
                raise DataError(ev / t.test, f"test audio listed in {trials_path} not found (.flac or .wav)")
            spk = Path(t.test).name.split("-", 1)[0]
            entries[t.test] = FileEntry(t.test, spk, path)
    enrol_map = {}
    map_path = lists / "enroll.map"
    if map_path.is_file():
        for parts in _read_list(map_path):
            ids = [_source_utterance_id(tok) for tok in parts[1:]]
            for uid in ids:
                if uid not in entries:
                    path = _on_disk(cn1 / "data", uid)
                    if path is None:
                        raise DataError(map_path, f"source utterance {uid!r} of {parts[0]} not found under data/")
                    entries[uid] = FileEntry(uid, uid.split("/", 1)[0], path)
            enrol_map[parts[0]] = ids
    return list(entries.values()), trials, enrol_map, trials_path


def prepare_cnceleb(save_folder, cn1_folder=None, cn2_folder=None, options=None, concat_min_seconds=None):
    """Train on CN-Celeb1 dev (+ CN-Celeb2 when given); trials from CN-Celeb1 eval.

    ``concat_min_seconds``: None (off) keeps every training clip as it is. A number of seconds
    concatenates each speaker's training clips of one genre shorter than that into new
    utterances of at least that length, as WeSpeaker's CN-Celeb recipe does (its
    ``min_duration=5``), because CN-Celeb has many clips under 2 s; long clips are kept as they
    are. The new audio is written under ``<save_folder>/concat/``, its sources listed in
    ``concat_map.json`` and the counts in ``counts.json`` (``"concat"``); see ``ltspk.data.concat``.
    """
    if not cn1_folder and not cn2_folder:
        raise HparamsError("give cn1_folder and/or cn2_folder")
    concat_min_seconds = None if concat_min_seconds is None else check_min_seconds(concat_min_seconds)
    options = options or PrepOptions()
    train, verification, trials, enrol_map, source = [], [], [], {}, ""
    if cn1_folder:
        dev = cn1_dev_speakers(cn1_folder)
        train += _data_entries(Path(cn1_folder) / "data",
                               (lambda s: s in dev) if dev is not None else (lambda s: s < FIRST_EVAL_SPEAKER))
        if (Path(cn1_folder) / "eval" / "lists" / "trials.lst").is_file():
            verification, trials, enrol_map, source = list_cn1_eval(cn1_folder)
    if cn2_folder:
        spk_lst = Path(cn2_folder) / "spk.lst"
        listed = {p[0] for p in _read_list(spk_lst)} if spk_lst.is_file() else None
        train += _data_entries(Path(cn2_folder) / "data", (lambda s: s in listed) if listed else (lambda s: True))
    concat = None
    if concat_min_seconds is not None:
        concat = functools.partial(concat_short_clips, min_seconds=concat_min_seconds, workers=options.workers,
                                   progress=options.progress)
    return finish_preparation("cnceleb", save_folder, train, verification, trials, options,
                              trials_source=source, enrol_map=enrol_map,
                              meta={"cn1": bool(cn1_folder), "cn2": bool(cn2_folder)}, concat=concat)
