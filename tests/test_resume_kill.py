"""Kill a training run with SIGKILL mid-epoch, resume it, and finish: the outcome is the
uninterrupted run's (same logged losses, weights and evaluation), and the dead run's lock on
the output folder is taken over.

The killed run is a subprocess that kills itself from a Brain hook, one batch after an intra-epoch
checkpoint of epoch 2, so the moment is deterministic; nothing after the signal runs (no exception
handler, no atexit). The reference and the resumed run are in-process (one thread, as the subprocess).
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from test_resume_exact import argv, checkpoints, train
from test_train_e2e import ROOT

KILL_AT = """
import os, runpy, signal, sys
from ltspk.train.brain import SpeakerBrain

def kill(self, batch, outputs, loss, should_step):
    if self.hparams.epoch_counter.current == 2 and self.step == 3:
        os.kill(os.getpid(), signal.SIGKILL)

SpeakerBrain.on_fit_batch_end = kill
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
RUN = {"yaml_name": "demo_tde.yaml", "epochs": 2, "evaluate": True}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _killed_run(tmp_path, name):
    cmd = [sys.executable, "-c", KILL_AT, str(ROOT / "recipes" / "train.py"), *argv(tmp_path, name, **RUN)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env) as proc:
        _, err = proc.communicate(timeout=300)
    return proc, err


def _outcome(out):
    meta, final = checkpoints(out)[-1]
    assert meta["end-of-epoch"] and meta["epoch"] == 2
    weights = {k: torch.load(final / f"{k}.ckpt", weights_only=True) for k in ("embedding_model", "classifier")}
    records = json.loads((out / "results.json").read_text())["records"]
    metrics = {(r["task"], r["family"], r["role"], r["split"], json.dumps(r.get("params"), sort_keys=True)): r["metrics"]
               for r in records}
    return (out / "train_log.txt").read_text().splitlines(), weights, metrics


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path, one_thread):
    ref = train(tmp_path, "ref", **RUN)
    out = tmp_path / "killed"
    proc, err = _killed_run(tmp_path, "killed")
    assert proc.returncode == -9, err[-3000:]
    assert not (out / "results.json").exists()
    assert json.loads((out / ".ltspk.lock").read_text())["pid"] == proc.pid  # the dead run's lock is left
    meta, killed_at = checkpoints(out)[-1]
    assert meta["end-of-epoch"] is False
    # the intra-epoch checkpoint holds the loader position, optimiser, random state and the head's state
    assert {"dataloader-TRAIN.ckpt", "optimizer.ckpt", "classifier.ckpt", "counter.ckpt", "rng.ckpt"} <= {
        p.name for p in killed_at.iterdir()}
    assert (killed_at / "dataloader-TRAIN.ckpt").read_text() == "2"  # batches of epoch 2 already done
    state = torch.load(killed_at / "classifier.ckpt", weights_only=True)
    assert state["embed_mean"].abs().sum() > 0 and bool(state["has_prior"])

    train(tmp_path, "killed", **RUN)  # would raise FolderLocked if the dead run's lock were not taken over
    assert not (out / ".ltspk.lock").exists()
    log, weights, metrics = _outcome(out)
    ref_log, ref_weights, ref_metrics = _outcome(ref)
    assert log == ref_log and [line.split(",")[0] for line in log] == ["epoch: 1", "epoch: 2"]
    for k in weights:
        assert weights[k].keys() == ref_weights[k].keys()
        assert all(torch.equal(weights[k][n], ref_weights[k][n]) for n in weights[k]), k
    assert metrics == ref_metrics
