"""Kill a training run hard mid-epoch, resume it, and finish: nothing is lost."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from test_train_e2e import ROOT, TINY, latest_ckpt, run


def _cmd(out, *extra):
    return [sys.executable, str(ROOT / "recipes" / "train.py"), str(ROOT / "hparams" / "demo_tde.yaml"),
            "--output_folder", str(out), "--data_folder", str(out.parent / "corpus"), *TINY, *extra]


def _ckpt_meta(d):
    import yaml

    try:
        return yaml.safe_load((d / "CKPT.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _epoch2_intra_ckpt(out):
    """An intra-epoch checkpoint written after epoch 1's end-of-epoch checkpoint."""
    metas = [_ckpt_meta(d) for d in (out / "save").glob("CKPT+*")]
    ends = [m["unixtime"] for m in metas if m.get("end-of-epoch") and m.get("epoch") == 1]
    return bool(ends) and any(m.get("end-of-epoch") is False and m.get("unixtime", 0) > ends[0] for m in metas)


def _headline(run_dir):
    res = json.loads((run_dir / "results.json").read_text())
    return {(r["task"], r["family"]): r["metrics"] for r in res["records"] if r["role"] == "headline"}


def test_kill_mid_epoch_then_resume(tmp_path):
    epochs = ["--number_of_epochs", "2"]
    ref = tmp_path / "ref"
    run("train.py", "demo_tde.yaml", ref, *epochs)
    ref_res = _headline(ref)

    out = tmp_path / "killed"
    (tmp_path / "corpus").mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    steps = ["--ckpt_interval_minutes", "0", "--ckpt_interval_steps", "2"]
    proc = subprocess.Popen(_cmd(out, *epochs, *steps), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        # wait until epoch 1 is done and an intra-epoch checkpoint of epoch 2 exists
        while time.time() < deadline and proc.poll() is None:
            log = out / "train_log.txt"
            if log.is_file() and "epoch: 1" in log.read_text() and _epoch2_intra_ckpt(out):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (out / "results.json").exists()
    killed_at = latest_ckpt(out)
    assert _ckpt_meta(killed_at)["end-of-epoch"] is False
    # the intra-epoch checkpoint holds the loader position, optimiser and the head's state
    assert {"dataloader-TRAIN.ckpt", "optimizer.ckpt", "classifier.ckpt", "counter.ckpt"} <= {
        p.name for p in killed_at.iterdir()}
    assert int((killed_at / "dataloader-TRAIN.ckpt").read_text().split()[0]) >= 2  # batches already done
    state = torch.load(killed_at / "classifier.ckpt", weights_only=True)
    assert state["embed_mean"].abs().sum() > 0 and bool(state["has_prior"])

    run("train.py", "demo_tde.yaml", out, *epochs, *steps)
    res = _headline(out)
    log = (out / "train_log.txt").read_text().splitlines()
    assert [line.split(",")[0] for line in log] == ["epoch: 1", "epoch: 2"]
    # same seed, resumed mid-epoch: the outcome matches the uninterrupted run within noise
    assert abs(res[("verification", "cosine")]["eer"] - ref_res[("verification", "cosine")]["eer"]) < 12
    assert abs(res[("speaker_id", "plain")]["overall"] - ref_res[("speaker_id", "plain")]["overall"]) <= 25
