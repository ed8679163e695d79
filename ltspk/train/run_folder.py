"""A run folder that can be copied or moved: its ``hyperparams.yaml`` names the run's own files relative
to the folder and the corpus by absolute paths, and a recipe given the folder reads it from there."""

import io
import re
from pathlib import Path

from ltspk.runtime.atomic import write_text
from ltspk.runtime.errors import HparamsError
from ltspk.train.hparams import allowed_keys, none_as_null, nullable_keys
from ltspk.train.layering import blocks, hparams_text


def relocatable_text(text, output_folder):
    """``text`` (a resolved hparams YAML) with every path inside ``output_folder`` written as
    ``!ref <output_folder>/...``: a run folder's ``hyperparams.yaml`` names its own files relative to
    it, so that the folder may be copied or moved (``run_folder_argument`` sets ``output_folder`` to
    where it is). The ``output_folder`` line keeps its value; paths outside the run stay as they are."""
    forms = sorted({str(output_folder).rstrip("/") or "/", str(Path(output_folder).resolve())}, key=len, reverse=True)
    patterns = [re.compile(r"(?<=[\s\[{,])(['\"]?)" + re.escape(f) + r"(?=[/'\"\s,\]}]|$)") for f in forms]
    out = []
    for line in text.splitlines(keepends=True):
        if not re.match(r"output_folder\s*:", line):
            for pattern in patterns:
                line = pattern.sub(r"!ref \1<output_folder>", line)
        out.append(line)
    return "".join(out)


EXTERNAL_PATH_KEYS = ("data_folder", "vox2_folder", "cn2_folder", "trials", "noise_folder", "rir_folder",
                      "pretrained_embedder")


def absolute_external_paths(text, keys=EXTERNAL_PATH_KEYS, base=None):
    """``text`` (a resolved hparams YAML) with each top-level ``key: relative/path`` of ``keys`` made
    absolute against ``base`` (the working directory): a run folder evaluated from elsewhere still
    finds its corpus. Nulls, absolute paths and values with YAML tags are left as they are."""
    base = Path(base or Path.cwd())
    out = []
    for line in text.splitlines(keepends=True):
        m = re.match(r"^(\w+)(\s*:\s*)(['\"]?)([^'\"#\s!][^'\"#]*?)\3(\s*(?:#.*)?)$", line.rstrip("\n"))
        if m and m.group(1) in keys and m.group(4) not in ("null", "None", "~") and not Path(m.group(4)).is_absolute():
            value = str((base / m.group(4)).resolve())
            line = f"{m.group(1)}{m.group(2)}{m.group(3)}{value}{m.group(3)}{m.group(5)}" + ("\n" if line.endswith("\n") else "")
        out.append(line)
    return "".join(out)


def run_folder_argument(argv):
    """``argv`` with a leading run folder replaced by the ``hyperparams.yaml`` training saved
    there (overrides applied, references resolved) and ``--output_folder`` set to that folder
    (unless given): a trained run is re-used with no corpus paths, where it is, even copied or
    moved (its files are named relative to it: ``relocatable_text``)."""
    argv = list(argv)
    if argv and Path(argv[0]).is_dir():
        folder = Path(argv[0])
        saved = folder / "hyperparams.yaml"
        if not saved.is_file():
            raise HparamsError(f"{argv[0]}: a folder was given, but it holds no hyperparams.yaml (not a training run?)")
        argv[0] = str(saved)
        if not any(a == "--output_folder" or a.startswith("--output_folder=") for a in argv[1:]):
            _refuse_absolute_paths_elsewhere(saved, folder)
            argv += ["--output_folder", str(folder.resolve())]
    return argv


def _refuse_absolute_paths_elsewhere(saved, folder):
    """A ``hyperparams.yaml`` written before run folders were relocatable names the run's files by
    absolute paths: read from another folder than the one it names, it would write there."""
    text = "".join(line for line in saved.read_text(encoding="utf-8").splitlines(keepends=True)
                   if not line.lstrip().startswith("#"))  # comments name no file the run reads or writes
    m = re.search(r"^output_folder\s*:\s*(['\"]?)(.*?)\1\s*(?:#.*)?$", text, re.M)
    if not m or not m.group(2) or Path(m.group(2)).resolve() == folder.resolve():
        return
    if relocatable_text(text, m.group(2)) != text:
        raise HparamsError(f"{saved}: names its files by absolute paths inside {m.group(2)} (written by an older "
                           f"ltspk), but the run folder is {folder}: it was copied or moved there (or is read from "
                           "another working directory), and reading it would write to the other folder. Use its "
                           f"hparams file instead: HPARAMS --output_folder {folder} (with its data_folder and other "
                           "overrides), or move it back")


def save_hyperparams(hparams_file, overrides, folder):
    """<folder>/hyperparams.yaml: the whole configuration (its base files merged in) with the overrides
    applied as hyperpyyaml applies them and the references kept, so that a value given again later
    (``evaluate.py RUN --tde_alphas ...``, ``train.py RUN/hyperparams.yaml --number_of_epochs 20
    --extend_epochs``) reaches everything that refers to it; the paths inside the run folder as
    ``!ref <output_folder>/...`` (``relocatable_text``) and the corpus by absolute paths."""
    from hyperpyyaml.core import recursive_update
    from ruamel.yaml import YAML

    source = hparams_text(hparams_file, overrides or "")
    given = none_as_null(overrides or "", nullable_keys(source))  # --key none: null, as the run read it
    yaml = YAML()
    doc = yaml.load(source)
    # a mapping given merges into the file's, as hyperpyyaml's overrides do
    values = given if isinstance(given, dict) else yaml.load(given) if given.strip() else None
    for update in (values, {"output_folder": str(folder)}):
        if update:
            recursive_update(doc, update)
    out = io.StringIO()
    yaml.dump(doc, out)
    text = out.getvalue()
    # a key that only fed a block the command line replaced (causal_mu under --classifier ...) feeds nothing now
    allowed = allowed_keys(text)
    text = "".join(block for key, block, _ in blocks(text) if key is None or key in allowed or key.startswith("__"))
    text = relocatable_text(text, folder)  # the run's own files relative to it: the folder may be moved
    text = absolute_external_paths(text)  # the corpus where it is: the run may be evaluated from anywhere
    write_text(Path(folder) / "hyperparams.yaml", f"# Generated from:\n# {Path(hparams_file).resolve()}\n"
                                                  f"# yamllint disable\n{text}")
