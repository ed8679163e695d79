"""DDP on CPU with the gloo backend, two processes."""

import json
import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_train_e2e import run

from ltspk.heads import CausalNormHead


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _moving_average_worker(rank, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        head = CausalNormHead(4, 3).train()
        batch = torch.full((2, 4), float(rank + 1))  # rank 0 sees ones, rank 1 twos
        head(batch, torch.tensor([0, 1]))
        head(batch, torch.tensor([0, 1]))
        torch.save(head.embed_mean.clone(), Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_causal_norm_direction_is_averaged_over_ranks(tmp_path):
    mp.spawn(_moving_average_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    # the batch mean averaged over ranks is 1.5; two steps: 0.9 * 1.5 + 1.5
    assert torch.allclose(a, torch.full((4,), 0.9 * 1.5 + 1.5)) and torch.equal(a, b)


def test_torchrun_two_processes(tmp_path):
    out = tmp_path / "run"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(_free_port())]
    run("train.py", "demo_tde.yaml", out, "--number_of_epochs", "1", "--distributed_backend=gloo", "--sampler", "class",
        launcher=launcher)
    res = json.loads((out / "results.json").read_text())
    head = {(r["task"], r["family"]): r["metrics"] for r in res["records"] if r["role"] == "headline"}
    assert head[("verification", "cosine")]["n_trials"] == 60 and head[("speaker_id", "plain")]["n"] == 16
    assert os.path.isfile(out / "save" / "label_encoder.txt")
