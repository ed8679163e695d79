"""Checkpoints: a save that crashes half-way leaves nothing recovery could pick; the random state
round-trips; a checkpoint of another configuration or label encoder is refused."""

import random
import re

import numpy as np
import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer, mark_as_loader, mark_as_saver, register_checkpoint_hooks

from ltspk.runtime.checkpoints import AtomicCheckpointer
from ltspk.runtime.errors import LtspkError
from ltspk.runtime.fingerprint import CheckpointMismatch
from ltspk.runtime.rng import RNGState


@register_checkpoint_hooks
class Exploding:
    @mark_as_saver
    def save(self, path):
        raise KeyboardInterrupt("killed while saving")

    @mark_as_loader
    def load(self, path, end_of_epoch=True):
        pass


def test_crash_during_save_leaves_no_checkpoint(tmp_path):
    lin = torch.nn.Linear(2, 2)
    ok = AtomicCheckpointer(tmp_path, recoverables={"lin": lin})
    first = ok.save_checkpoint(meta={"step": 1})
    crashing = AtomicCheckpointer(tmp_path, recoverables={"lin": lin, "boom": Exploding()})
    with pytest.raises(KeyboardInterrupt):
        crashing.save_checkpoint(meta={"step": 2})
    assert [c.meta["step"] for c in ok.list_checkpoints()] == [1]
    assert ok.find_checkpoint().path == first.path
    assert len(ok.remove_incomplete()) == 1 and len(list(tmp_path.iterdir())) == 1


def test_speechbrain_checkpointer_would_list_the_partial_one(tmp_path):
    # the failure the subclass exists for: SpeechBrain's own Checkpointer lists it
    crashing = Checkpointer(tmp_path, recoverables={"lin": torch.nn.Linear(2, 2), "boom": Exploding()})
    with pytest.raises(KeyboardInterrupt):
        crashing.save_checkpoint(meta={"step": 2})
    assert [c.meta["step"] for c in crashing.list_checkpoints()] == [2]


class Payload:
    """Any pickled object: loading it would run code from the file."""


def test_recovery_refuses_pickled_objects(tmp_path):
    lin = torch.nn.Linear(2, 2)
    ckpt = AtomicCheckpointer(tmp_path, recoverables={"lin": lin}).save_checkpoint()
    torch.save({"weight": torch.zeros(2, 2), "bias": torch.zeros(2), "evil": Payload()}, ckpt.path / "lin.ckpt")
    with pytest.raises(LtspkError, match="lin.ckpt: the checkpoint file holds pickled Python objects") as e:
        AtomicCheckpointer(tmp_path, recoverables={"lin": torch.nn.Linear(2, 2)}).recover_if_possible()
    assert "eights only load failed" in str(e.value.__cause__) or "Unsupported global" in str(e.value.__cause__)


def _draws(gen):
    return (torch.rand(3), torch.rand(3, generator=gen), np.random.rand(3), np.random.standard_normal(),
            random.random(), random.gauss(0, 1))


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    gen = torch.Generator().manual_seed(3)
    random.gauss(0, 1)  # leaves a cached second normal in Python's state
    ckpt = AtomicCheckpointer(tmp_path, recoverables={"rng": RNGState(gen)}).save_checkpoint()
    state = torch.load(ckpt.path / "rng.ckpt", weights_only=True)
    assert {"torch", "numpy", "python", "loader"} <= set(state)
    expected = _draws(gen)
    torch.manual_seed(99), np.random.seed(99), random.seed(99), gen.manual_seed(99)
    AtomicCheckpointer(tmp_path, recoverables={"rng": RNGState(gen)}).recover_if_possible()
    again = _draws(gen)
    assert all(torch.equal(a, b) for a, b in zip(expected[:2], again[:2]))
    assert np.array_equal(expected[2], again[2]) and expected[3:] == again[3:]


@pytest.fixture(scope="module")
def aam_run(tmp_path_factory):
    """A 1-epoch tiny demo_aam run (in-process, one thread)."""
    from test_resume_exact import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("identity")
    try:
        yield tmp, train(tmp, "run", epochs=1)
    finally:
        torch.set_num_threads(threads)


def test_other_configuration_is_refused_naming_both(aam_run):
    from test_resume_exact import train

    tmp, out = aam_run
    before = (out / "hyperparams.yaml").read_text()
    with pytest.raises(CheckpointMismatch) as e:
        train(tmp, "run", yaml_name="demo_la.yaml")
    msg = str(e.value)
    assert "checkpoint of another configuration" in msg and "they differ in head.args.la_tau" in msg
    assert "[demo_aam: AAMHead(margin=0.2, scale=30.0)," in msg and "[demo_la: AAMHead(la_tau=1.0, margin=0.2" in msg
    assert (out / "hyperparams.yaml").read_text() == before  # the run's record is not overwritten
    assert len((out / "train_log.txt").read_text().splitlines()) == 1  # nothing trained


def test_permuted_label_encoder_is_refused_naming_the_file(aam_run):
    from test_resume_exact import argv, train

    from ltspk.train.experiment import trained_experiment

    tmp, out = aam_run
    enc = out / "save" / "label_encoder.txt"
    original = enc.read_text()
    lines = original.splitlines()
    (a, ia), (b, ib) = (lines[0].rsplit(" => ", 1), lines[1].rsplit(" => ", 1))
    enc.write_text("\n".join([f"{a} => {ib}", f"{b} => {ia}", *lines[2:]]) + "\n")  # two indices swapped
    args = argv(tmp, "run", epochs=1)
    try:
        with pytest.raises(CheckpointMismatch, match=re.escape(f"{enc}: label encoder differs from the one checkpoint")):
            trained_experiment(args)  # evaluation
        with pytest.raises(CheckpointMismatch, match="label_encoder.txt: label encoder differs"):
            train(tmp, "run", epochs=1)  # resuming
    finally:
        enc.write_text(original)
    trained_experiment(args)  # the file the run wrote is accepted


def _ddp_saver(rank, port, folder, delay):
    import os
    import time

    import torch.distributed as dist

    import ltspk.runtime.checkpoints

    os.environ["RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    if rank == 0:  # a slow disk on the main process: the metafile appears late
        replace = os.replace
        ltspk.runtime.checkpoints.os.replace = lambda *a: (time.sleep(delay), replace(*a))
    ckpt = AtomicCheckpointer(folder, recoverables={"lin": torch.nn.Linear(2, 2)})
    for step in range(3):
        ckpt.save_and_keep_only(meta={"step": step}, num_to_keep=1)
    dist.destroy_process_group()


def test_ddp_processes_agree_on_checkpoints_to_delete(tmp_path):
    import multiprocessing
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_ddp_saver, args=(rank, port, str(tmp_path), 0.5)) for rank in range(2)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 60
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [p.pid for p in procs if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not hung, "DDP processes deadlocked deleting checkpoints"
    assert [p.exitcode for p in procs] == [0, 0]
    assert [c.meta["step"] for c in AtomicCheckpointer(tmp_path).list_checkpoints()] == [2]
