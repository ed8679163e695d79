"""Run folders are relocatable: a copied or moved run folder is evaluated where it is, and nothing is
written to the folder it came from (whose files are hashed before and after).

One tiny 1-epoch run (in-process, as in test_resume_exact) with its preparation inside the run folder."""

import hashlib
import subprocess

import pytest
from conftest import recipe_module
from test_resume_exact import argv, train_main

pytestmark = pytest.mark.usefixtures("one_thread")


def _hashes(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("relocate")
    args = argv(tmp, "R", yaml_name="demo_tde.yaml", epochs=1, evaluate=True)
    i = args.index("--prepared_folder")
    del args[i:i + 2]  # the default: <output_folder>/prepared
    train_main()(args)
    out = tmp / "R"
    _close_file_logs(out)  # SpeechBrain's log.txt handler of this in-process run (a process of its own ends it)
    assert (out / "prepared" / "train.csv").is_file() and (out / "results.json").is_file()
    return tmp, out


def _close_file_logs(folder):
    import logging

    for logger in [logging.getLogger(), *[v for v in logging.Logger.manager.loggerDict.values()
                                          if isinstance(v, logging.Logger)]]:
        for handler in list(logger.handlers):
            if str(getattr(handler, "baseFilename", "")).startswith(str(folder)):
                logger.removeHandler(handler)
                handler.close()


def _evaluate(folder):
    recipe_module("evaluate").main([str(folder)])


def test_a_copied_run_is_evaluated_where_it_is(trained):
    tmp, original = trained
    before = _hashes(original)
    copy = tmp / "R2"
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    (copy / "results.json").unlink()
    _evaluate(copy)
    assert (copy / "results.json").is_file() and (copy / "evaluation" / "records.json").is_file()
    assert _hashes(original) == before  # nothing of the original was written


def test_a_moved_run_is_evaluated_where_it_is(trained):
    tmp, original = trained
    before = _hashes(original)
    first, moved = tmp / "R_copy", tmp / "R3"
    subprocess.run(["cp", "-a", str(original), str(first)], check=True)
    subprocess.run(["mv", str(first), str(moved)], check=True)
    (moved / "results.json").unlink()
    _evaluate(moved)
    assert (moved / "results.json").is_file()
    assert not first.exists()  # not prepared again where the run used to be
    assert _hashes(original) == before


def test_an_older_run_folder_with_absolute_paths_is_refused_when_moved(trained):
    from ltspk.runtime.errors import HparamsError
    from ltspk.train.run_folder import run_folder_argument

    tmp, original = trained
    old = tmp / "R_old"
    subprocess.run(["cp", "-a", str(original), str(old)], check=True)
    saved = old / "hyperparams.yaml"
    text = saved.read_text().replace("!ref <output_folder>", str(original))  # as an older ltspk wrote it
    saved.write_text(text)
    with pytest.raises(HparamsError, match="names its files by absolute paths"):
        run_folder_argument([str(old)])


def test_corpus_paths_are_saved_absolute(tmp_path):
    """A run trained with a relative --data_folder names its corpus absolutely in hyperparams.yaml, so
    evaluating the run folder from another working directory finds the same corpus."""
    from ltspk.train.run_folder import absolute_external_paths

    text = ("data_folder: ../corpus\ntrials: null\nvox2_folder: /abs/vox2\nnoise_folder: 'my noise'  # MUSAN\n"
            "prepared_folder: !ref <output_folder>/prepared\nsample_rate: 16000\n")
    out = absolute_external_paths(text, base=tmp_path / "work")
    noise = (tmp_path / "work" / "my noise").resolve()
    assert out.splitlines() == [f"data_folder: {(tmp_path / 'corpus').resolve()}", "trials: null",
                                "vox2_folder: /abs/vox2", f"noise_folder: '{noise}'  # MUSAN",
                                "prepared_folder: !ref <output_folder>/prepared", "sample_rate: 16000"]
