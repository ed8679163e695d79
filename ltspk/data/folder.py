"""Your own speaker set, kept as one folder per speaker.

``DIR/<speaker>/**/<file>.{wav,flac,ogg}``: the speaker is the first folder level. The session
(recording occasion, channel, word...) is the next folder level where files are nested deeper,
otherwise the named group ``session`` of ``session_pattern`` matched against the file name
(for DSPSpeech-20, ``<speaker>-<word>-<take>.flac``, the word: ``^[^-]+-(?P<session>[^-]+)-``),
otherwise unknown. Sessions make hold-outs (``holdout_by: session``) and target trials cross-session
where they can be.
IDs: the relative path without extension (``spk01/spk01-03-02``).

Bad input is refused at preparation, before any training: no speaker folders, two files
with one ID (``spk/a.wav`` and ``spk/a.flac``) and symbolic-link loops are errors; a speaker
folder without audio is left out with a warning (and listed in ``counts.json`` under
``meta.speakers_without_audio``): an empty or stray folder should not stop a run, and a
corpus where no folder holds audio is an error. Unusable files (unreadable, empty, too
short) are listed in ``bad_files.txt`` and left out (``on_bad_file``).

Verification: a user trial list (VoxCeleb ``<0|1> <enrol> <test>`` or Kaldi
``<enrol> <test> target|nontarget`` lines, paths relative to DIR), whose speakers are then
left out of training; or ``verification_speakers`` held-out speakers (a number, or a fraction
of the speakers) chosen with the seed, with generated trials (balanced target / non-target,
target pairs cross-session where the speaker has more than one session). A trial list must
name files of DIR and hold both target and non-target trials.
"""

import logging
import os
import random
import re
from pathlib import Path

from ltspk.data.audio import missing
from ltspk.data.prepare import FileEntry, PrepOptions, finish_preparation
from ltspk.data.trials import Trial, check_trial_labels, generate_trials, strip_ext
from ltspk.runtime.errors import DataError

log = logging.getLogger(__name__)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


def audio_files(folder):
    """Audio files below ``folder`` (relative posix paths, sorted; hidden files and folders left
    out), following symbolic links; a link back into the tree (a loop) is an error."""
    seen, found = set(), []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            raise DataError(dirpath, f"symbolic-link loop: this folder is {real}, which is already inside this tree")
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
                found.append(os.path.relpath(os.path.join(dirpath, name), folder))
    return sorted(Path(p).as_posix() for p in found)


def claim_id(by_id, uid, path):
    """Record ``uid -> path`` in ``by_id``; a second file with the same ID is an error naming both."""
    if uid in by_id:
        raise DataError(path, f"two files map to one utterance ID {uid!r}: {by_id[uid]} and {path} "
                              "(same name, different extension): keep one")
    by_id[uid] = path


def compile_session_pattern(session_pattern):
    """``session_pattern`` compiled (None for none); a ``DataError`` naming the key when it is not a
    regular expression or has no named group ``session``."""
    if not session_pattern:
        return None
    try:
        pattern = re.compile(session_pattern)
    except re.error as e:
        raise DataError("session_pattern", f"{session_pattern!r} is not a regular expression ({e})") from None
    if "session" not in pattern.groupindex:
        raise DataError("session_pattern", "the session pattern needs a named group (?P<session>...)")
    return pattern


def id_session(uid, pattern=None):
    """The session of an utterance ID ``<speaker>/<path without extension>``: the folder after the
    speaker where there is one (a session folder, VoxCeleb's video, LibriSpeech's chapter), else the
    ``session`` group of ``pattern`` (compiled or not) on the file name, else None (unknown)."""
    parts = uid.split("/")
    if len(parts) > 2:
        return parts[1]
    if pattern is not None:
        m = re.search(pattern, parts[-1])
        return m.group("session") if m else None
    return None


def list_speaker_folders(root, session_pattern=None):
    """(entries, session of each ID, speakers without audio) of a speaker-folder corpus."""
    pattern = compile_session_pattern(session_pattern)
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, missing(root, "corpus folder"))
    speakers = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not speakers:
        raise DataError(root, "no speaker folders: expected DIR/<speaker>/<files> (one folder per speaker)")
    entries, sessions, empty, by_id = [], {}, [], {}
    for spk in speakers:
        files = audio_files(root / spk)
        if not files:
            empty.append(spk)
            continue
        for rel in files:
            uid = f"{spk}/{strip_ext(rel)}"
            path = str(root / spk / rel)
            claim_id(by_id, uid, path)
            sessions[uid] = id_session(uid, pattern)
            entries.append(FileEntry(uid, spk, path, sessions[uid]))
    if empty:
        log.warning("%d speaker folder(s) hold no audio (%s) and are left out: %s", len(empty),
                    "/".join(AUDIO_EXTENSIONS), ", ".join(empty[:10]))
    if not entries:
        raise DataError(root, f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in any speaker folder")
    return entries, sessions, empty


def read_user_trials(path, known_ids):
    """A VoxCeleb-style or Kaldi-style trial list; IDs are paths relative to the corpus folder
    (the extension is optional)."""
    trials = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(path, "trial list not found") from None
    for n, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) == 3 and parts[0] in ("0", "1"):
            label, enrol, test = int(parts[0]), parts[1], parts[2]
        elif len(parts) == 3 and parts[2] in ("target", "nontarget"):
            label, enrol, test = int(parts[2] == "target"), parts[0], parts[1]
        else:
            raise DataError(path, f"line {n}: expected '<0|1> <enrol> <test>' or '<enrol> <test> target|nontarget', "
                                  f"got {line.strip()!r}")
        trials.append(Trial(label, strip_ext(enrol), strip_ext(test)))
    if not trials:
        raise DataError(path, "trial list is empty")
    outside = sorted({i for t in trials for i in (t.enrol, t.test) if i not in known_ids})
    if outside:
        raise DataError(path, f"{len(outside)} trial file(s) are not in the corpus folder, e.g. {', '.join(outside[:3])}")
    check_trial_labels(trials, path)  # here, before the corpus is probed
    return trials


def held_out_speakers(speakers, verification_speakers, seed):
    """A seeded choice of ``verification_speakers`` speakers (a number >= 2 or a fraction in (0, 1))."""
    speakers = sorted(speakers)
    v = float(verification_speakers)
    n = int(round(v * len(speakers))) if 0 < v < 1 else int(v)
    if n < 2 or n > len(speakers) - 2:
        raise DataError("verification_speakers", f"{verification_speakers} gives {n} verification speaker(s) of "
                                                 f"{len(speakers)}: need at least 2, and 2 left for training")
    return set(random.Random(seed).sample(speakers, n))


def prepare_folder(save_folder, data_folder, options=None, session_pattern=None, verification_speakers=None,
                   trials=None, n_trials=20000):
    options = options or PrepOptions()
    entries, sessions, empty = list_speaker_folders(data_folder, session_pattern)
    speakers = {e.spk_id for e in entries}
    trial_list, source = [], ""
    if trials:
        trial_list = read_user_trials(trials, {e.id for e in entries})
        held = {e.spk_id for e in entries if e.id in {i for t in trial_list for i in (t.enrol, t.test)}}
        source = str(trials)
    elif verification_speakers:
        held = held_out_speakers(speakers, verification_speakers, options.seed)
        speaker_of = {e.id: e.spk_id for e in entries if e.spk_id in held}
        trial_list = generate_trials(speaker_of, n_trials, seed=options.seed, session_of=sessions)
        source = f"generated over {len(held)} held-out speakers, seed {options.seed}"
    else:
        held = set()
    used = {i for t in trial_list for i in (t.enrol, t.test)}
    train = [e for e in entries if e.spk_id not in held]
    verification = [e for e in entries if e.id in used]
    meta = {"session_pattern": session_pattern, "verification_speakers": sorted(held),
            "speakers_without_audio": empty,
            "sessions_known": sum(1 for s in sessions.values() if s is not None)}
    return finish_preparation("folder", save_folder, train, verification, trial_list, options,
                              trials_source=source, meta=meta)
