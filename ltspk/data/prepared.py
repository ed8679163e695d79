"""A prepared folder that is whole and knows what it was made from.

Preparation builds into a temporary folder beside the target and swaps it in whole, so a run
killed halfway never leaves new manifests beside old counts or trials. The folder records its
fingerprint in ``prepared.json``: the corpus, the data folder, every preparation option and
the corpus options, plus hashes of the manifests, ``counts.json`` and ``enrol_map.json`` it
wrote. Training reuses a prepared folder only when the fingerprint matches its configuration,
and otherwise stops with the keys that differ.

Manifests list absolute audio paths. Audio a corpus writes into its preparation (CN-Celeb's
concatenated short clips, ``<folder>/concat/``) is first written into the temporary folder, so
before the swap the manifest rows that point into it are moved to the final folder's path
(``relocate_manifests``): every listed file exists once the folder is swapped in.
"""

import hashlib
import json
import logging
import os
from dataclasses import asdict, is_dataclass, replace
from pathlib import Path

from ltspk.data.manifest import read_manifest, write_manifest
from ltspk.runtime.atomic import recover_folder, staged_folder, write_json
from ltspk.runtime.errors import DataError
from ltspk.runtime.fingerprint import differences

log = logging.getLogger(__name__)
FINGERPRINT = "prepared.json"
MANIFESTS = ("train.csv", "spkid_test.csv", "spkid_valid.csv", "verification.csv", "trials.txt")
# hashed with the manifests: what evaluation reads besides them (shot groups, enrolment map); a
# preparation made before they were hashed is reused without their check (with a warning)
ALSO_HASHED = ("counts.json", "enrol_map.json")
NOT_IN_FINGERPRINT = ("progress", "workers")  # how fast, not what


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def fingerprint(corpus, data_folder, options, corpus_options=None):
    from ltspk.data.corpora import NULL_IS_DEFAULT

    opts = asdict(options) if is_dataclass(options) else dict(options or {})
    # a corpus option whose null is the corpus's own default is the same preparation as no value
    corpus_options = {k: v for k, v in (corpus_options or {}).items() if not (v is None and k in NULL_IS_DEFAULT)}
    return _plain({"corpus": corpus, "data_folder": str(Path(data_folder).resolve()) if data_folder else None,
                   "options": {k: v for k, v in opts.items() if k not in NOT_IN_FINGERPRINT},
                   "corpus_options": corpus_options})


def _json_content(value):
    """A JSON value with integral floats as ints: ``6`` and ``6.0`` (an option read from YAML or from the
    command line) are one content."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_json_content(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_content(v) for k, v in value.items()}
    return value


def _manifest_hashes(folder):
    out = {}
    for name in MANIFESTS + ALSO_HASHED:
        p = folder / name
        if p.is_file():
            data = p.read_bytes()
            if name.endswith(".json"):  # its content, not its spelling
                try:
                    data = json.dumps(_json_content(json.loads(data)), sort_keys=True).encode()
                except json.JSONDecodeError:
                    pass  # hashed as it is: any edit still changes the hash
            out[name] = hashlib.sha256(data).hexdigest()
    return out


def relocate_manifests(staged, final):
    """Rewrite the manifest rows of ``staged`` whose audio lies inside ``staged`` to the same file
    under ``final`` (where the folder will be); manifests with no such row are left untouched.
    Returns how many rows were moved."""
    staged, final = os.path.abspath(staged), os.path.abspath(final)
    if not any(p.is_dir() for p in Path(staged).iterdir()):
        return 0  # audio a preparation writes lies in a folder of it: with none, no manifest is read
    moved = 0
    for name in MANIFESTS:
        path = Path(staged) / name
        if not name.endswith(".csv") or not path.is_file():
            continue
        rows = read_manifest(path)
        inside = [os.path.commonpath([staged, os.path.abspath(u.wav)]) == staged for u in rows]
        if any(inside):
            write_manifest(path, [replace(u, wav=os.path.join(final, os.path.relpath(os.path.abspath(u.wav), staged)))
                                  if yes else u for u, yes in zip(rows, inside)])
            moved += sum(inside)
    return moved


def prepare_whole(corpus, data_folder, folder, options, corpus_options=None, plot=True):
    """Prepare ``corpus`` into ``folder`` through a temporary folder swapped in whole."""
    from ltspk.data.corpora import prepare_corpus
    from ltspk.data.summary import load_counts, plot_counts, summary_text

    folder = Path(folder)
    with staged_folder(folder, clean=True) as tmp:
        prepare_corpus(corpus, data_folder, tmp, options, **(corpus_options or {}))
        relocate_manifests(tmp, folder)  # audio written into tmp/ is listed where it will be after the swap
        info = load_counts(tmp / "counts.json")
        log.info("\n%s", summary_text(info))
        if plot:
            plot_counts(info, tmp / "counts.png")
        write_json(tmp / FINGERPRINT, {**fingerprint(corpus, data_folder, options, corpus_options),
                                       "manifests_sha256": _manifest_hashes(tmp)})
    return folder


def check_prepared(folder, corpus, data_folder, options, corpus_options=None):
    """True if ``folder`` holds a whole preparation made with these settings; False if there
    is nothing there; a DataError if it was made otherwise or is not whole."""
    folder = Path(folder)
    recover_folder(folder, clean=True)
    if not folder.exists():
        return False
    fp_path = folder / FINGERPRINT
    if not fp_path.is_file():
        if not any(folder.iterdir()):
            return False
        raise DataError(folder, f"not a whole ltspk preparation (no {FINGERPRINT}: interrupted, or made by an "
                                "older ltspk): delete it or point prepared_folder elsewhere")
    try:
        recorded = json.loads(fp_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(fp_path, f"not valid JSON ({e})") from None
    hashes = recorded.pop("manifests_sha256", {})
    diff = differences(recorded, fingerprint(corpus, data_folder, options, corpus_options), ("prepared", "now"))
    if diff:
        raise DataError(folder, "prepared with other settings than this run's: " + "; ".join(diff)
                        + ". Point prepared_folder elsewhere, or delete the folder to prepare again")
    now = _manifest_hashes(folder)
    unchecked = [n for n in ALSO_HASHED if n in now and n not in hashes]
    if unchecked:
        log.warning("%s was prepared by an older ltspk: %s not checked for changes (delete the folder to prepare "
                    "again)", folder, ", ".join(unchecked))
    changed = [n for n, h in now.items() if n not in unchecked and hashes.get(n) != h]
    changed += [n for n in hashes if n not in now]  # deleted since
    if changed:
        raise DataError(folder, f"{', '.join(changed)} changed since preparation: delete the folder to prepare again")
    return True


def preparation_record(folder):
    """The fingerprint ``folder`` was prepared with (``prepared.json``: corpus, data folder, options and
    file hashes; not the folder's own path), or None when it has none."""
    path = Path(folder) / FINGERPRINT
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e})") from None


def ensure_prepared(corpus, data_folder, folder, options, corpus_options=None):
    """Reuse a matching preparation, or make one (whole)."""
    if not check_prepared(folder, corpus, data_folder, options, corpus_options):
        prepare_whole(corpus, data_folder, folder, options, corpus_options)
    return Path(folder)
