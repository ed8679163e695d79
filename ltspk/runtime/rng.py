"""Random-number state in every checkpoint, so that a resumed run draws what the uninterrupted one drew.

``RNGState`` is a SpeechBrain recoverable holding the global torch, CUDA, numpy and Python
generators and the training loader's own ``torch.Generator``. Its file holds only tensors,
numbers and lists, and is read with ``torch.load(weights_only=True)``.

Guaranteed: in a single process with ``num_workers: 0``, on the same device, software and
number of threads, a run resumed from any checkpoint (end-of-epoch or intra-epoch) draws the
same random crops and batches as the uninterrupted run from that point on.
Not guaranteed: ``num_workers > 0`` (workers are seeded from the loader's generator when an
epoch's iterator starts, and prefetch, so a run resumed mid-epoch draws other crops); DDP (only
rank 0's state is saved, and every rank is given it back); non-deterministic CUDA kernels.
"""

import random
from contextlib import contextmanager

import numpy as np
import torch
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks


def seed_host_generators(seed):
    """Seed Python's and numpy's global generators (torch's is seeded by the hparams file)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


def loader_generator(seed):
    """The training loader's own generator, so that building its iterator never draws from the global one."""
    return torch.Generator().manual_seed(int(seed))


def host_rng_state():
    """The global torch (CPU and CUDA), numpy and Python generators' state, for ``set_host_rng_state``."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), np.random.get_state(), random.getstate(), cuda


def set_host_rng_state(state):
    cpu, np_state, py_state, cuda = state
    torch.set_rng_state(cpu)
    np.random.set_state(np_state)
    random.setstate(py_state)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


@contextmanager
def kept_rng_state():
    """Put the global generators back as they were on leaving: what runs inside changes nothing that
    is drawn afterwards."""
    state = host_rng_state()
    try:
        yield
    finally:
        set_host_rng_state(state)


@register_checkpoint_hooks
class RNGState:
    """Checkpoints the global generators and, when given, the training loader's generator."""

    def __init__(self, generator=None):
        self.generator = generator

    @mark_as_saver
    def save(self, path):
        keys, pos, has_gauss, gauss = np.random.get_state()[1:]
        version, py_state, py_gauss = random.getstate()
        state = {"torch": torch.get_rng_state(),
                 "numpy": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
                 "numpy_gauss": [int(has_gauss), float(gauss)],
                 "python": torch.tensor(py_state, dtype=torch.int64), "python_version": int(version),
                 "python_gauss": py_gauss}
        if self.generator is not None:
            state["loader"] = self.generator.get_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(state, path)

    @mark_as_loader
    def load(self, path, end_of_epoch):
        del end_of_epoch  # the state is the same either way
        state = torch.load(path, weights_only=True)
        torch.set_rng_state(state["torch"])
        has_gauss, gauss = state["numpy_gauss"]
        np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], has_gauss, gauss))
        random.setstate((state["python_version"], tuple(state["python"].tolist()), state["python_gauss"]))
        if self.generator is not None and "loader" in state:
            self.generator.set_state(state["loader"])
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
