"""The malloc settings kept while a CPU encoder runs: set on entry, given back on exit (by the
outermost of nested blocks), and nothing where the C library is not glibc."""

import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from alignbench_plugins.encoders import heap


class RecordingLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, parameter, value):
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


# glibc's malloc.h: M_TRIM_THRESHOLD is -1, M_MMAP_THRESHOLD -3.
ENTRY = [("mallopt", -3, 32 << 20), ("mallopt", -1, 1 << 30)]
EXIT = [("mallopt", -1, 64 << 20), ("malloc_trim", 0)]


def test_settings_are_made_on_entry_and_the_excess_given_back_on_exit():
    libc = RecordingLibc()
    with heap.heap_kept(libc) as took:
        assert took and libc.calls == ENTRY
    assert libc.calls == ENTRY + EXIT


def test_nested_blocks_give_the_heap_back_once_the_outermost_ends():
    libc = RecordingLibc()
    with heap.heap_kept(libc):
        with heap.heap_kept(libc):
            pass
        assert libc.calls == ENTRY
    assert libc.calls == ENTRY + EXIT


def test_an_error_inside_still_gives_the_heap_back():
    libc = RecordingLibc()
    with pytest.raises(RuntimeError), heap.heap_kept(libc):
        raise RuntimeError("encoding failed")
    assert libc.calls == ENTRY + EXIT


def test_without_glibc_nothing_is_called(monkeypatch):
    monkeypatch.setattr(heap, "glibc", lambda: None)
    with heap.heap_kept() as took:
        assert took is False


PROBE = """
import ctypes, sys
import numpy as np
from alignbench_plugins.encoders.heap import glibc, heap_kept
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = glibc()
libc.mallinfo2.restype = Info
def mapped_for_a_16_mib_block():
    before = libc.mallinfo2().hblkhd
    block = np.ones(4 << 20, np.float32)
    grown = libc.mallinfo2().hblkhd - before
    del block
    return grown
if sys.argv[1] == "kept":
    with heap_kept():
        print(mapped_for_a_16_mib_block())
else:
    print(mapped_for_a_16_mib_block())
"""


@pytest.mark.parametrize("how, from_maps", [("default", True), ("kept", False)])
def test_real_glibc_serves_a_16_mib_block_from_the_heap_while_kept(how, from_maps):
    """glibc's own statistics (mallinfo2's bytes in memory maps), each way in a fresh process: by
    default a new 16 MiB block is a memory map of its own; while the heap is kept it is not."""
    libc = heap.glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("the C library here is not glibc 2.33 or later")
    done = subprocess.run([sys.executable, "-c", PROBE, how], capture_output=True, text=True, check=True)
    grown = int(done.stdout.split()[-1])
    assert (grown >= 16 << 20) if from_maps else grown == 0, grown


def test_a_cpu_encoder_encodes_inside_it(monkeypatch):
    torch = pytest.importorskip("torch")
    from alignbench_plugins.encoders import base
    from alignbench_plugins.encoders.images import imagenet_tensor

    class TinyConv(base.TorchEncoder):
        name, modality = "tiny-conv", "image"

        def default_weights(self):
            return "random-init"

        def load_model(self):
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 7, stride=4), torch.nn.AdaptiveAvgPool2d(1),
                                       torch.nn.Flatten())

        def features(self, model, batch):
            assert inside == [True], "a batch was encoded outside the heap settings"
            return model(imagenet_tensor(batch, size=32, resize=36).to(self.device_))

    inside = []

    @contextmanager
    def recording():
        inside.append(True)
        yield True
        inside.append(False)

    monkeypatch.setattr(base, "heap_kept", recording)
    rows = TinyConv(device="cpu", batch_size=2).encode([np.zeros((32, 32, 3), np.uint8)] * 3)
    assert rows.shape == (3, 4) and inside == [True, False]
