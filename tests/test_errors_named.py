"""Errors name the file or key and what is wrong: non-UTF-8 file names, typos inside nested options,
impossible learning rates, ``none`` for a nullable key, and checkpoints that cannot be written or read."""

import errno
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import speechbrain as sb
import torch
from conftest import ROOT, recipe_module, write_audio
from torch import nn

from ltspk.runtime.errors import CheckpointError, DataError, HparamsError, LtspkError
from ltspk.train.hparams import load_hparams

BAD = b"\xff.wav"  # latin-1 "ÿ": not UTF-8
SHOWN = "\\xff.wav"


def _bad_name_corpus(root):
    for spk in ("a", "b", "c"):
        for k in range(4):
            write_audio(root / spk / f"{spk}{k}.wav", 0.3, seed=hash((spk, k)) % 1000)
    shutil.copy(root / "b" / "b0.wav", os.path.join(os.fsencode(root / "b"), BAD))
    return root


# ------------------------------------------------------------------------------------ file names


def test_prepare_names_a_file_whose_name_is_not_utf8(tmp_path, capsys):
    data = _bad_name_corpus(tmp_path / "corpus")
    prepare = recipe_module("prepare")
    prepare.main(["folder", "--data_folder", str(data), "--prepared_folder", str(tmp_path / "p"),
                  "--holdout_per_speaker", "1", "--valid_per_speaker", "1"])
    listed = (tmp_path / "p" / "bad_files.txt").read_text(encoding="utf-8")
    assert listed.startswith(f"{data / 'b' / SHOWN}\tfile name is not valid UTF-8")
    with pytest.raises(DataError) as e:  # the recipe's entry (ltspk.cli.entry) prints it as "error: ..."
        prepare.main(["folder", "--data_folder", str(data), "--prepared_folder", str(tmp_path / "r"),
                      "--on_bad_file", "raise"])
    assert str(e.value).startswith(f"{data / 'b' / SHOWN}: file name is not valid UTF-8")


def test_extract_skips_a_file_whose_name_is_not_utf8(tmp_path, capsys):
    data = _bad_name_corpus(tmp_path / "corpus")
    rows, = [recipe_module("extract").audio_dir_rows(data, {"min_seconds": 0.1}, "skip", tmp_path / "bad.txt")]
    assert len(rows) == 12 and all("\udcff" not in u.wav for u in rows)
    assert f"skipped {data / 'b' / SHOWN}: file name is not valid UTF-8" in capsys.readouterr().err
    assert (tmp_path / "bad.txt").read_text(encoding="utf-8").startswith(str(data / "b" / SHOWN))


def test_predict_names_a_file_whose_name_is_not_utf8(tmp_path, capsys):
    from test_identify import FAST, _synthetic_speakers, write_sb_folder

    from ltspk.embedding.embedders import SpeechBrainEmbedder
    from ltspk.identify import EnrolSettings, enrol

    embedder = SpeechBrainEmbedder(write_sb_folder(tmp_path / "sb"))
    data = _synthetic_speakers(tmp_path / "ok", {"a": 6, "b": 5, "c": 4}, seed=3)
    enrol(embedder, data, tmp_path / "m", EnrolSettings(test_per_speaker=1, valid_per_speaker=1, **FAST))
    bad = os.path.join(os.fsencode(data / "a"), BAD)
    shutil.copy(data / "a" / "a-000.wav", bad)
    identify = recipe_module("identify")
    with pytest.raises(SystemExit) as e:
        identify.main(["predict", "--model", str(tmp_path / "m"), "--embedder", str(tmp_path / "sb"),
                       os.fsdecode(bad), str(data / "a" / "a-001.wav")])
    assert e.value.code == "error: 1 file(s) could not be identified"
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{data / 'a' / SHOWN}\terror: file name is not valid UTF-8 (its odd bytes shown as \\xNN): " \
                     "rename the file, e.g. with convmv -f latin1 -t utf8 --notest -r DIR (manifests and results are UTF-8)"
    assert out[1].startswith(f"{data / 'a' / 'a-001.wav'}\t")


# ------------------------------------------------------------------------------- hparams values


def _load(*args, file="demo_aam.yaml"):
    hparams_file, _, overrides = sb.parse_arguments([str(ROOT / "hparams" / file), "--output_folder", "/nonexistent/run",
                                                     "--data_folder", "/nonexistent/data", *args])
    return load_hparams(hparams_file, overrides)


@pytest.mark.parametrize("key, value, message", [
    ("train_dataloader_options", "{batch_szie: 8}", "train_dataloader_options has no option 'batch_szie'; did you mean "
                                                    "'batch_size'?"),
    ("crt_options", "{min_step: 5}", "crt_options has no option 'min_step'; did you mean 'min_steps'? (it takes "
                                     "batch_size, epochs, lr, min_steps, seed, weight_decay)"),
    ("lws_options", "{weight_decy: 0.001}", "lws_options has no option 'weight_decy'; did you mean 'weight_decay'?"),
    ("corpus_options", "{n_train_speaker: 8}", "corpus_options has no option 'n_train_speaker'; did you mean "
                                               "'n_train_speakers'?"),
])
def test_a_typo_inside_a_nested_option_names_the_nearest_option(key, value, message):
    with pytest.raises(HparamsError, match=rf"demo_aam.yaml: {re.escape(message)}"):
        _load(f"--{key}", value)


def test_nested_options_that_exist_are_accepted():
    h = _load("--train_dataloader_options", "{batch_size: 8, num_workers: 0, drop_last: True, shuffle: True}",
              "--crt_options", "{epochs: 2, min_steps: 5}", "--lws_options", "{weight_decay: 0.001}",
              "--corpus_options", "{n_train_speakers: 8}")
    assert h["lws_options"]["weight_decay"] == 0.001 and h["corpus_options"] == {"n_train_speakers": 8}


@pytest.mark.parametrize("args, message", [
    (("--lr", "-0.01"), "lr must be a positive number, got -0.01"),
    (("--lr", "0"), "lr must be a positive number, got 0"),
    (("--lr_final", "-0.002"), "lr_final must be a number >= 0, got -0.002"),
    (("--lr", "none"), "lr must be a positive number, got 'none'"),
])
def test_impossible_learning_rates_are_refused_naming_the_key(args, message):
    with pytest.raises(HparamsError, match=re.escape(f"demo_aam.yaml: {message}")):
        _load(*args)


def test_a_final_learning_rate_of_zero_is_accepted():
    assert _load("--lr_final", "0")["lr_final"] == 0


@pytest.mark.parametrize("word", ["null", "none", "None", "NONE", "~"])
def test_none_and_null_on_the_command_line_for_a_nullable_key(word):
    assert _load("--imbalance_factor", word, file="folder_aam.yaml")["imbalance_factor"] is None  # 20 in the file
    assert _load("--sampler", word)["sampler"] is None  # null in the file


def test_none_stays_a_word_for_a_key_that_cannot_be_null():
    with pytest.raises(HparamsError, match="cannot build the objects"):
        _load("--loss", "none")  # ce | focal: 'none' is neither, and not a null


# ---------------------------------------------------------------------------------- checkpoints


@pytest.fixture
def checkpointer(tmp_path):
    from ltspk.runtime.checkpoints import AtomicCheckpointer

    return AtomicCheckpointer(tmp_path / "save", recoverables={"model": nn.Linear(2, 2)})


@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0"),
])
def test_disk_full_while_saving_a_checkpoint_says_so_and_names_the_file(checkpointer, monkeypatch, failure):
    def full(*args, **kwargs):
        raise failure

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError) as e:
        checkpointer.save_checkpoint()
    assert isinstance(e.value, LtspkError)
    assert Path(e.value.path).name == "model.ckpt" and Path(e.value.path).parent.parent == checkpointer.checkpoints_dir
    assert "no space left on device" in e.value.problem
    monkeypatch.undo()
    assert checkpointer.find_checkpoint() is None  # the cut-short one never counts as a checkpoint
    assert checkpointer.save_checkpoint() is not None


def test_a_read_only_checkpoint_folder_is_named(checkpointer, monkeypatch):
    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(os, "makedirs", read_only)
    with pytest.raises(CheckpointError, match=r"save/CKPT\+[^:]*: cannot save the checkpoint: Read-only file system "
                                              r"\(is the output folder read-only\?\)"):
        checkpointer.save_checkpoint()


def test_a_read_only_output_folder_is_named_before_any_work(tmp_path, monkeypatch):
    import tempfile

    from ltspk.runtime.runlock import RunLock

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(LtspkError, match=re.escape(f"{tmp_path}: cannot write the run's lock file {tmp_path}/.ltspk.lock "
                                                   "here (Read-only file system): is the output folder read-only?")):
        RunLock(tmp_path).acquire()


def test_an_emptied_or_pickled_checkpoint_file_is_named(checkpointer):
    from ltspk.runtime.checkpoints import read_weights

    ckpt = checkpointer.save_checkpoint()
    path = ckpt.paramfiles["model"]
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: the checkpoint file is empty (0 bytes")):
        checkpointer.recover_if_possible()
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: the checkpoint file is empty")):
        read_weights(path)  # the reader of checkpoint averaging
    torch.save({"weight": torch.zeros(2, 2), "bias": Path("not a tensor")}, path)  # a pickled object
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: the checkpoint file holds pickled Python objects")):
        checkpointer.recover_if_possible()
    path.write_bytes(b"PK\x03\x04cut")
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: the checkpoint file is truncated or not a PyTorch")):
        checkpointer.recover_if_possible()
    torch.save(nn.Linear(3, 3).state_dict(), path)
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: the checkpoint's weights do not fit the model")):
        checkpointer.recover_if_possible()


def test_counts_json_of_a_bad_name_preparation_is_valid_utf8(tmp_path):
    """Nothing with a surrogate escape reaches a written file."""
    data = _bad_name_corpus(tmp_path / "corpus")
    recipe_module("prepare").main(["folder", "--data_folder", str(data), "--prepared_folder", str(tmp_path / "p"),
                                   "--holdout_per_speaker", "1", "--valid_per_speaker", "1"])
    for f in (tmp_path / "p").iterdir():
        if f.suffix in (".json", ".csv", ".txt"):
            f.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "p" / "counts.json").read_text())["n_bad_files"] == 1
    with pytest.raises(DataError, match="not valid UTF-8"):
        from ltspk.data.audio import probe

        probe(os.fsdecode(os.path.join(os.fsencode(data / "b"), BAD)))


def test_more_bad_inputs_are_named(tmp_path):
    """A key given twice, a crop of 0 s, an unknown sampler, --seed after -- in a sweep, a corrupt brain.ckpt."""
    import subprocess
    import sys

    from ltspk.runtime.errors import HparamsError
    from ltspk.train.hparams import load_hparams

    root = Path(__file__).resolve().parents[1]
    hp = root / "hparams" / "demo_aam.yaml"
    with pytest.raises(HparamsError, match="number_of_epochs is given twice"):
        load_hparams(hp, "number_of_epochs: 2\nnumber_of_epochs: 3")
    with pytest.raises(HparamsError, match="crop_seconds must be a positive number"):
        load_hparams(hp, "crop_seconds: 0")
    with pytest.raises(HparamsError, match="sampler 'clas' is not one of.*did you mean 'class'"):
        load_hparams(hp, "sampler: clas")
    r = subprocess.run([sys.executable, str(root / "recipes" / "sweep.py"), str(hp), "--root", str(tmp_path), "--",
                        "--seed", "5"], capture_output=True, text=True)
    assert r.returncode != 0 and "--seed after -- is set by the sweep" in r.stderr

    from types import SimpleNamespace

    from ltspk.runtime.checkpoints import describe_checkpoint
    from ltspk.runtime.errors import CheckpointError

    ckpt = tmp_path / "CKPT+x"
    ckpt.mkdir()
    (ckpt / "brain.ckpt").write_text("{{{")
    fake = SimpleNamespace(paramfiles={"brain": ckpt / "brain.ckpt"}, meta={"epoch": 1}, path=ckpt)
    with pytest.raises(CheckpointError, match="brain.ckpt.*not a readable checkpoint file"):
        describe_checkpoint(fake)


def test_settings_that_shape_training_include_margin_schedule_and_embedder_scale():
    from ltspk.runtime.fingerprint import training_settings

    base = {"seed": 1, "number_of_epochs": 2, "train_dataloader_options": {"batch_size": 4}}
    plain = training_settings(base, 2.0)
    assert plain["margin_schedule"] is None and plain["augment"] is None and plain["embedder_lr_scale"] is None
    tuned = training_settings({**base, "pretrained_embedder": "x", "embedder_lr_scale": 0.1}, 2.0)
    assert tuned["embedder_lr_scale"] == 0.1
    assert training_settings({**base, "pretrained_embedder": "x", "embedder_lr_scale": 1.0}, 2.0) != tuned
