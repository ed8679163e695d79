"""What a run tells a researcher: the headline and its summary line, the training curves, TensorBoard,
and validation that leaves the random generators as training left them."""

import importlib.util
import random

import numpy as np
import pytest
import torch

from ltspk.evaluation.records import Record, headline, headline_table, summary_line
from ltspk.runtime.rng import kept_rng_state

LOG = """epoch: 1, lr: 2.00e-03 - train loss: 10.06 - valid loss: 11.08, valid error: 87.50, valid acc_few: 33.33
epoch: 2, lr: 2.00e-04 - train loss: 5.74 - valid loss: 7.44, valid error: 50.00, valid acc_few: 66.67
"""


def result():
    g = {"many": 90.0, "medium": 80.0, "few": 60.0, "overall": 76.5, "n": 40}
    return {"run": {"experiment": "folder_aam", "seed": 1}, "failures": {}, "stale": {}, "records": [
        Record("evaluate", "verification", "cosine", "trials", {"n_trials": 60, "eer": 18.449, "min_dcf_0.05": 0.5,
                                                                "min_dcf_0.01": 0.9154}),
        Record("evaluate", "speaker_id", "plain", "spkid_test", g),
        Record("evaluate", "speaker_id", "plain", "spkid_valid", g, role="validation"),
        Record("evaluate", "speaker_id", "posthoc_la", "spkid_test", g, {"posthoc_tau": 1.0}, "diagnostic"),
        Record("evaluate", "speaker_id", "posthoc_la", "spkid_test", g, {"posthoc_tau": 0.5}, "headline",
               {"split": "spkid_valid", "metric": "overall accuracy", "value": 70.0}),
        Record("evaluate", "diagnostic", "logit_norm", "spkid_test", {}),
    ]}


def test_headline_holds_the_headline_records_only_and_one_summary_line():
    text = headline_table(result())
    assert "posthoc_la posthoc_tau=0.5 (chosen on spkid_valid)" in text and "| plain |" in text
    assert "posthoc_tau=1 " not in text and "diagnostic" not in text.lower() and "spkid_valid |" not in text
    line = "folder_aam seed 1: EER 18.45% minDCF(0.01) 0.915 | speaker ID overall 76.5% few 60.0% (plain)"
    assert summary_line(result()) == line
    text = headline(result())
    assert text.count(line) == 1 and text.startswith("## folder_aam (seed 1)")


def test_validation_leaves_the_generators_as_it_found_them():
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    expected = (torch.rand(3), np.random.rand(), random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    with kept_rng_state():
        torch.rand(100), np.random.rand(5), random.random()
        torch.utils.data.DataLoader(range(4), batch_size=2).__iter__()  # draws its base seed from torch's generator
    got = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]


def test_training_curves_png(tmp_path):
    from ltspk.train.curves import plot_training_curves, read_train_log

    (tmp_path / "train_log.txt").write_text(LOG + LOG.splitlines()[1] + "\n")  # a resumed epoch 2 logged again
    epochs = read_train_log(tmp_path / "train_log.txt")
    assert list(epochs) == [1, 2] and epochs[2]["valid error"] == 50.0 and epochs[1]["lr"] == 2e-3
    png = plot_training_curves(tmp_path / "train_log.txt", tmp_path / "training_curves.png", title="x seed 1")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_tensorboard_logger(tmp_path):
    from ltspk.train.experiment import tensorboard_logger

    assert tensorboard_logger({"tensorboard": False, "output_folder": str(tmp_path)}) is None
    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("tensorboard is not installed (pip install tensorboard, or the dev extras)")
    from ltspk.train.brain import SpeakerBrain

    tb = tensorboard_logger({"tensorboard": True, "output_folder": str(tmp_path)})

    class Fake:
        tensorboard_logger = tb

    for epoch in (3, 4):  # a resumed run: steps are the epochs
        SpeakerBrain.log_tensorboard(Fake(), epoch, {"epoch": epoch, "lr": 0.1}, {"loss": 2.0}, {"loss": 3.0, "error": 50.0})
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"lr", "loss/train", "loss/valid", "error/valid"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("error/valid")] == [3, 4]


def test_tensorboard_checked_early_but_written_only_by_training(tmp_path):
    """Evaluation and stage 2 build an Experiment too: they check the option and write no event file."""
    from ltspk.train.experiment import tensorboard_logger

    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("tensorboard is not installed (pip install tensorboard, or the dev extras)")
    assert tensorboard_logger({"tensorboard": True, "output_folder": str(tmp_path)}, create=False) is None
    assert not (tmp_path / "tensorboard").exists()
    with pytest.raises(Exception, match="neither true/false nor a folder"):
        tensorboard_logger({"tensorboard": 3, "output_folder": str(tmp_path)}, create=False)
