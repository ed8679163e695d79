"""A run resumes (or is evaluated) only with the settings it was trained with: every setting that shapes
training is recorded in its checkpoints, a change is refused naming each difference, extending
``number_of_epochs`` is an explicit choice (``--extend_epochs``) recorded with the checkpoints, and
evaluation records the checkpoint it evaluated (epoch, optimiser step, mid-epoch or not).

Runs are in-process as in test_resume_exact: one tiny 2-epoch run, copied for the runs that train on."""

import json
import shutil

import pytest
from test_resume_exact import Stop, argv, checkpoints, stop_after_batch, train

from ltspk.runtime.errors import LtspkError
from ltspk.runtime.fingerprint import CheckpointMismatch

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("settings")
    out = train(tmp, "base", yaml_name="demo_tde.yaml", epochs=2)
    steps = json.loads(json.dumps(_brain_state(checkpoints(out)[-1][1])))["optimizer_step"] // 2
    return tmp, out, steps


def _brain_state(ckpt):
    import yaml

    return yaml.safe_load((ckpt / "brain.ckpt").read_text())


def _copy(tmp, name):
    shutil.copytree(tmp / "base", tmp / name, symlinks=True)
    return tmp / name


def _with(args, *pairs):
    """``args`` with each ``--key value`` of ``pairs`` set: replaced where the key is there, else added."""
    args = list(args)
    for key, value in zip(pairs[::2], pairs[1::2]):
        if key in args:
            args[args.index(key) + 1] = value
        else:
            args += [key, value]
    return args


def _state(out):
    return (out / "hyperparams.yaml").read_text(), (out / "train_log.txt").read_text(), sorted(
        p.name for p in (out / "save").iterdir())


CHANGES = {
    "seed": (["--seed", "7", "--prepared_folder", "{tmp}/prepared_seed7"], ["seed: 1986 (checkpoint) vs 7 (this run)"]),
    "lr": (["--lr", "0.05"], ["lr: 0.002 (checkpoint) vs 0.05 (this run)", "optimizer.args.lr"]),
    "sampler": (["--sampler", "class"], ["sampler: None (checkpoint) vs 'class' (this run)"]),
    "crop": (["--crop_seconds", "1.0"], ["crop_seconds: 0.5 (checkpoint) vs 1.0 (this run)"]),
    "preparation": (["--holdout_per_speaker", "3", "--prepared_folder", "{tmp}/prepared_h3"],
                    ["preparation.options.holdout_per_speaker: 2 (checkpoint) vs 3 (this run)"]),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_resuming_with_other_settings_is_refused_naming_each(base, name):
    tmp, out, _ = base
    extra, expected = CHANGES[name]
    extra = [a.format(tmp=tmp) for a in extra]
    before = _state(out)
    from test_resume_exact import train_main

    with pytest.raises(CheckpointMismatch) as e:
        train_main()(_with(argv(tmp, "base", yaml_name="demo_tde.yaml", epochs=2), *extra))
    msg = str(e.value)
    assert isinstance(e.value, LtspkError) and "trained with other settings" in msg
    for text in expected:
        assert text in msg, msg
    assert "another output_folder" in msg
    assert _state(out) == before  # nothing trained, hyperparams.yaml not rewritten
    if name == "seed":
        assert not (tmp / "prepared_seed7").exists()  # refused before a new split was prepared


def test_batch_size_change_is_refused(base):
    tmp, out, _ = base
    args = _with(argv(tmp, "base", yaml_name="demo_tde.yaml", epochs=2), "--train_dataloader_options",
                 "{batch_size: 4, num_workers: 0, drop_last: True, shuffle: True}")
    from test_resume_exact import train_main

    with pytest.raises(CheckpointMismatch, match=r"batch_size: 8 \(checkpoint\) vs 4 \(this run\)"):
        train_main()(args)


def test_other_epochs_are_refused_and_extending_must_be_asked_for(base):
    from ltspk.train.experiment import trained_experiment

    tmp, out, _ = base
    before = _state(out)
    with pytest.raises(CheckpointMismatch, match=r"number_of_epochs: 2 \(checkpoint\) vs 3 \(this run\)") as e:
        train(tmp, "base", yaml_name="demo_tde.yaml", epochs=3)
    assert "--extend_epochs" in str(e.value)
    with pytest.raises(CheckpointMismatch, match=r"number_of_epochs: 2 \(checkpoint\) vs 1 \(this run\)"):
        train(tmp, "base", "--extend_epochs", yaml_name="demo_tde.yaml", epochs=1)  # shortening is never an extension
    with pytest.raises(CheckpointMismatch, match=r"number_of_epochs: 2 \(checkpoint\) vs 1 \(this run\)"):
        trained_experiment(argv(tmp, "base", yaml_name="demo_tde.yaml", epochs=1))  # evaluation too
    assert _state(out) == before


def test_an_extension_is_recorded_and_evaluation_says_which_checkpoint(base):
    from ltspk.evaluation.evaluate import run_info
    from ltspk.train.experiment import trained_experiment

    tmp, _, steps = base
    out = _copy(tmp, "extended")
    train(tmp, "extended", "--extend_epochs", yaml_name="demo_tde.yaml", epochs=3)
    assert len((out / "train_log.txt").read_text().splitlines()) == 3
    assert "number_of_epochs: 3" in (out / "hyperparams.yaml").read_text()
    meta, last = checkpoints(out)[-1]
    saved = json.loads((last / "settings.ckpt").read_text())
    assert saved["settings"]["number_of_epochs"] == 3
    (ext,) = saved["extended"]
    assert ext["number_of_epochs"] == [2, 3] and ext["after_epoch"] == 2 and ext["optimizer_step"] == 2 * steps
    assert ext["lr_annealing"]["before"]["settings"] != ext["lr_annealing"]["after"]["settings"]

    exp, _, _ = trained_experiment(argv(tmp, "extended", yaml_name="demo_tde.yaml", epochs=3))
    info = exp.checkpoint_info
    assert info["epoch"] == 3 and info["mid_epoch"] is False and info["optimizer_step"] == 3 * steps
    assert info["epochs_planned"] == 3 and info["extended"] == saved["extended"] and info["checkpoint"] == last.name
    assert run_info(exp, "sha")["checkpoint"] == info


def test_a_mid_epoch_checkpoint_is_evaluated_as_such(base, monkeypatch):
    from ltspk.evaluation.evaluate import run_info
    from ltspk.evaluation.records import results_table
    from ltspk.train.experiment import trained_experiment

    tmp, _, steps = base
    out = _copy(tmp, "killed")
    with monkeypatch.context() as m:
        stop_after_batch(m, epoch=3, step=3)  # intra-epoch checkpoint after step 2 of epoch 3
        with pytest.raises(Stop):
            train(tmp, "killed", "--extend_epochs", yaml_name="demo_tde.yaml", epochs=3)
    meta, _ = checkpoints(out)[-1]
    assert meta["end-of-epoch"] is False
    exp, _, _ = trained_experiment(argv(tmp, "killed", yaml_name="demo_tde.yaml", epochs=3))
    info = exp.checkpoint_info
    assert info["mid_epoch"] is True and info["epoch"] == 3 and info["epochs_completed"] == 2
    assert info["optimizer_step"] == 2 * steps + 2 and info["epochs_planned"] == 3
    run = run_info(exp, "sha")
    assert run["checkpoint"] == info
    assert "MID-EPOCH checkpoint" in results_table({"run": run, "records": []})
