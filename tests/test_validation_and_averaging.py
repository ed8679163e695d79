"""Validation during training, the best checkpoint restored for evaluation (SpeechBrain's
min_keys / max_keys), and model averaging (WeSpeaker's average_model): the average equals the
mean computed by hand, and SpeechBrain's Checkpointer loads the averaged checkpoint.

Tiny in-process runs of the demo AAM file with the keys appended (as test_resume_exact)."""

import copy
import re

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer
from test_resume_exact import ROOT, argv, checkpoints, train

from ltspk.runtime.averaging import average_into, mean_state_dicts, write_averaged
from ltspk.runtime.checkpoint_policy import epoch_checkpoints
from ltspk.train.experiment import trained_experiment
from ltspk.train.layering import hparams_text, merge_text
from ltspk.train.options import TrainOptions


def variant(folder, name, extra):
    path = folder / f"demo_aam_{name}.yaml"
    path.write_text(merge_text(hparams_text(ROOT / "hparams" / "demo_aam.yaml"), extra))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.getbasetemp() / "tiny_runs"  # corpus and preparation shared with other modules' runs
    tmp.mkdir(exist_ok=True)
    return tmp


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))


def set_state(model, w, b, mean, var, tracked):
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([w]))
        model[0].bias.fill_(b)
        model[1].running_mean.fill_(mean)
        model[1].running_var.fill_(var)
        model[1].num_batches_tracked.fill_(tracked)


def check_training_options(hparams):
    return TrainOptions.from_hparams(hparams, need_crop=False)


def test_average_of_the_last_checkpoints_by_hand(tmp_path):
    model = tiny_model()
    ckpt = Checkpointer(tmp_path / "save", {"embedding_model": model, "classifier": torch.nn.Linear(1, 1)})
    for epoch, state in enumerate([([1.0, 2.0], 0.0, 0.5, 2.0, 3), ([3.0, 4.0], 1.0, 1.5, 4.0, 5),
                                   ([5.0, 10.0], 2.0, 2.5, 6.0, 7)], start=1):
        set_state(model, *state)
        ckpt.save_checkpoint(meta={"epoch": epoch})
    last2 = epoch_checkpoints(ckpt)[:2]
    assert [c.meta["epoch"] for c in last2] == [3, 2]
    fresh = tiny_model()
    average_into({"embedding_model": fresh, "classifier": torch.nn.Linear(1, 1)}, last2)
    # (epoch 2 + epoch 3) / 2, BatchNorm running statistics too; num_batches_tracked from epoch 3
    assert fresh[0].weight.tolist() == [[4.0, 7.0]] and fresh[0].bias.item() == 1.5
    assert fresh[1].running_mean.item() == 2.0 and fresh[1].running_var.item() == 5.0
    assert fresh[1].weight.item() == 1.0 and fresh[1].num_batches_tracked.item() == 7
    # written as a SpeechBrain checkpoint that SpeechBrain's own Checkpointer loads
    write_averaged(tmp_path / "averaged", {"embedding_model": fresh}, {"averaged_epochs": [3, 2]}, "avg_last2")
    other = tiny_model()
    found = Checkpointer(tmp_path / "averaged", {"embedding_model": other}).recover_if_possible()
    assert found.meta["averaged_epochs"] == [3, 2]
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), fresh.state_dict().values()))
    mixed = mean_state_dicts([{"x": torch.tensor([1.0]), "flag": torch.tensor(True)},
                              {"x": torch.tensor([2.0]), "flag": torch.tensor(False)}])
    assert mixed["x"].item() == 1.5 and mixed["flag"].item() is True


def test_inconsistent_choices_are_refused_before_any_work():
    from speechbrain.nnet.schedulers import NewBobScheduler

    base = {"valid_during_training": False}
    with pytest.raises(ValueError, match="valid_error needs validation during training"):
        check_training_options({**base, "ckpt_min_key": "valid_error"})
    with pytest.raises(ValueError, match="'valid_err' is not a checkpoint figure"):
        check_training_options({**base, "valid_during_training": True, "ckpt_min_key": "valid_err"})
    with pytest.raises(ValueError, match="both set"):
        check_training_options({**base, "ckpt_min_key": "loss", "ckpt_max_key": "loss"})
    with pytest.raises(ValueError, match="NewBobScheduler anneals on the validation loss"):
        check_training_options({**base, "lr_annealing": NewBobScheduler(0.1)})
    check_training_options({"valid_during_training": True, "ckpt_max_key": "valid_acc_few",
                            "lr_annealing": NewBobScheduler(0.1)})


def weights(module):
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_validation_and_the_best_checkpoint_restored_for_evaluation(runs, monkeypatch):
    # ckpt_max_key: valid_loss keeps the epoch of HIGHEST validation loss, so that the best is
    # (almost surely) not the latest and restoring it is visible
    yaml = variant(runs, "best", "valid_during_training: True\nckpt_max_key: valid_loss\n")
    seen = {}

    def fake_evaluate(exp):
        seen["weights"] = weights(exp.modules["embedding_model"])
        return {}
    monkeypatch.setattr("ltspk.evaluation.evaluate.evaluate", fake_evaluate)
    monkeypatch.setattr("ltspk.evaluation.records.headline", lambda res: "")
    out = train(runs, "best", yaml_name=str(yaml), epochs=3, evaluate=True)

    log = (out / "train_log.txt").read_text().splitlines()
    assert len(log) == 3
    for line in log:  # SpeechBrain's FileTrainLogger line, with the validation figures by shot group
        for field in ("train loss:", "valid loss:", "valid error:", "valid acc:", "valid acc_many:",
                      "valid acc_medium:", "valid acc_few:"):
            assert field in line, (field, line)
    # the best is the epoch of highest validation loss over ALL epochs (from the log, not from what was kept)
    valid_loss = {e: float(re.search(r"valid loss: ([^,\s]+)", line).group(1)) for e, line in enumerate(log, 1)}
    best_epoch = max(valid_loss, key=valid_loss.get)
    assert best_epoch != 3, f"premise: training lowers the validation loss, so the highest is not the last {valid_loss}"
    kept = {md["epoch"]: (md, d) for md, d in checkpoints(out)}
    assert sorted(kept) == sorted({best_epoch, 3})  # the best by valid_loss and the most recent, as SpeechBrain keeps
    best, latest = kept[best_epoch], kept[3]
    assert {"valid_error", "valid_acc", "valid_acc_many", "valid_acc_few"} <= set(best[0])
    on_file = torch.load(best[1] / "embedding_model.ckpt", weights_only=True)
    assert not same(on_file, torch.load(latest[1] / "embedding_model.ckpt", weights_only=True))
    assert same(seen["weights"], on_file)  # train.py evaluated the best checkpoint, not the latest
    exp, _, _ = trained_experiment(argv(runs, "best", yaml_name=str(yaml), epochs=3))
    assert same(weights(exp.modules["embedding_model"]), on_file)  # so does recipes/evaluate.py


def test_average_of_the_last_epochs_is_evaluated(runs):
    yaml = variant(runs, "avg", "valid_during_training: True\nckpt_min_key: valid_error\nckpt_average_last: 2\n")
    out = train(runs, "avg", yaml_name=str(yaml), epochs=3)
    epochs = {md["epoch"] for md, _ in checkpoints(out)}
    assert {2, 3} <= epochs  # the last 2 epochs are kept for averaging (and the best by valid_error)
    by_epoch = {md["epoch"]: d for md, d in checkpoints(out)}
    exp, _, _ = trained_experiment(argv(runs, "avg", yaml_name=str(yaml), epochs=3))
    a, b = (torch.load(by_epoch[e] / "embedding_model.ckpt", weights_only=True) for e in (2, 3))
    got = weights(exp.modules["embedding_model"])
    for k, v in got.items():
        if torch.is_floating_point(v):
            assert torch.allclose(v, ((a[k].double() + b[k].double()) / 2).float(), rtol=0, atol=1e-7), k
        else:
            assert torch.equal(v, b[k]), k  # e.g. num_batches_tracked: the latest epoch's
    averaged = out / "save" / "averaged"
    other = copy.deepcopy(exp.modules["embedding_model"])
    for p in other.parameters():
        p.data.zero_()
    found = Checkpointer(averaged, {"embedding_model": other}).recover_if_possible()
    assert found.meta["averaged_epochs"] == [3, 2] and same(weights(other), got)


def test_newbob_anneals_on_the_validation_loss(runs):
    import re

    text = hparams_text(ROOT / "hparams" / "demo_aam.yaml")
    text = re.sub(r"^lr_annealing: .*\n(?:    .*\n)*", "lr_annealing: !new:speechbrain.nnet.schedulers.NewBobScheduler "
                  "{initial_value: 0.002, improvement_threshold: 0.5}\n", text, flags=re.M)
    yaml = runs / "demo_aam_newbob.yaml"
    yaml.write_text(merge_text(text, "valid_during_training: True\n"))
    out = train(runs, "newbob", "--ckpt_interval_steps", "0", yaml_name=str(yaml), epochs=2)  # keep both epochs
    (m1, _), (m2, last) = checkpoints(out)
    assert (m1["epoch"], m2["epoch"]) == (1, 2)
    state = torch.load(last / "lr_annealing.ckpt", weights_only=True)  # NewBob's state is checkpointed ...
    assert state["metric_values"] == [m1["valid_loss"], m2["valid_loss"]]  # ... and it saw the validation losses
    # after epoch 2: halved unless the validation loss fell by at least half of epoch 1's
    improvement = (m1["valid_loss"] - m2["valid_loss"]) / m1["valid_loss"]
    expected = 0.002 if improvement >= 0.5 else 0.001
    opt = torch.load(last / "optimizer.ckpt", weights_only=True)
    assert opt["param_groups"][0]["lr"] == pytest.approx(expected) and state["hyperparam_value"] == pytest.approx(expected)
    assert all("lr: 2.00e-03" in line for line in (out / "train_log.txt").read_text().splitlines())


def test_a_margin_schedule_needs_a_head_with_a_margin():
    from functools import partial

    from ltspk.heads import AAMHead, CausalNormHead
    from ltspk.heads.aam import MarginScheduler

    check_training_options({"classifier": partial(AAMHead, margin=0.2), "margin_schedule": MarginScheduler()})
    with pytest.raises(ValueError, match="the head CausalNormHead has no margin"):
        check_training_options({"classifier": partial(CausalNormHead), "margin_schedule": MarginScheduler()})
