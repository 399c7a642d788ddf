"""Replay buffer (dreamer/README.md, "Data": online and uniform sampling, latent carry-over).

Every environment writes its own stream of steps. A replayed item is a window of `length`
consecutive steps of one stream (batch_length + 1: step 0 is the context step). Windows are drawn
uniformly from all windows that lie inside what a stream still holds, so they never reach past
the newest step of a stream, into evicted steps, or into another environment. With `online`, each
stream's fresh non-overlapping windows are queued as they complete and a batch takes queued windows
first, each once. Beside the data every step holds a latent (`deter`, `stoch`), written when the
step is added and overwritten with the training posteriors after each update.

Storage grows in chunks of `chunk` steps per stream, so memory follows the number of steps held
rather than the capacity. Once more than `capacity` steps are held, the oldest step of all
streams is evicted (FIFO).
"""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np

from dreamer.env import Space

STATE, ARRAYS = "replay.json", "replay.npz"  # the files `save` writes
_ORDER = "_order"  # global insertion number of each step, which decides FIFO eviction across streams


class _Stream:
    """Steps [start, end) of one environment; step i lives in chunks[i // chunk][i % chunk]."""

    def __init__(self):
        self.chunks: dict[int, dict[str, np.ndarray]] = {}
        self.start = 0
        self.end = 0
        self.online = 0  # first step of the next window to queue

    def windows(self, length: int) -> int:
        return max(0, self.end - self.start - length + 1)


class Replay:
    """Replay of `length`-step windows.

    spaces: per-step data keys (observations, signals, action) → Space; sampled with all steps.
    latents: latent keys (deter, stoch) → Space; sampled at the context step only and updated at
    the other steps. `seed` seeds the buffer's own generator, which `save` stores.
    """

    def __init__(self, spaces: dict[str, Space], latents: dict[str, Space], capacity: int,
                 length: int, online: bool, seed: int, chunk: int = 1024):
        if capacity < length:
            raise ValueError(f"replay capacity {capacity} is smaller than one window ({length} steps)")
        self.spaces = {**spaces, **latents, _ORDER: Space((), "int64")}
        self.data_keys, self.latent_keys = tuple(spaces), tuple(latents)
        self.capacity, self.length, self.online, self.chunk = capacity, length, online, chunk
        self.rng = np.random.default_rng(seed)
        self.streams: dict[int, _Stream] = {}
        self.queue: collections.deque[tuple[int, int]] = collections.deque()
        self.added = 0  # steps ever added
        self.size = 0  # steps held

    def __len__(self) -> int:
        return self.size

    def windows(self) -> int:
        """Number of distinct windows uniform sampling can draw from."""
        return sum(s.windows(self.length) for s in self.streams.values())

    def add(self, stream: int, step: dict[str, np.ndarray]) -> None:
        """Append one step (a value per data and latent key, unbatched) to `stream`.

        A step with `is_first` whose predecessor in the stream did not end its episode (an
        environment rebuilt on resume abandons its episode in flight) turns that predecessor into
        the episode's last step: `is_last` set and its action, never executed, zeroed."""
        s = self.streams.setdefault(stream, _Stream())
        if s.end > s.start and "is_last" in self.spaces and step["is_first"]:
            chunk, off = divmod(s.end - 1, self.chunk)
            prev = s.chunks[chunk]
            if not prev["is_last"][off]:
                prev["is_last"][off] = True
                prev["action"][off] = 0
        self._write(s, s.end, {**step, _ORDER: self.added})
        s.end += 1
        self.added += 1
        self.size += 1
        if self.online and s.end - s.online >= self.length:
            self.queue.append((stream, s.online))
            s.online += self.length
        while self.size > self.capacity:
            self._evict()

    def sample(self, batch: int):
        """A batch of `batch` windows: queued fresh windows first, the rest uniform.

        Returns (data, carry, ref): data {key: (batch, length, ...)} for the data keys, carry
        {key: (batch, ...)} the latents of each window's context step, and ref (batch, 2) int64
        rows (stream, first step) that `update` takes back.
        """
        refs = []
        while self.queue and len(refs) < batch:
            stream, start = self.queue.popleft()
            if start >= self.streams[stream].start:  # else evicted before it was trained on
                refs.append((stream, start))
        refs += self._uniform(batch - len(refs), self.rng)
        return self._gather(refs, self.length)

    def peek(self, batch: int, length: int, rng: np.random.Generator):
        """`batch` uniform windows, their first `length` steps (at most a window's), drawn with
        `rng`, as `sample` returns them, changing nothing: not the queue, not the buffer's generator
        (for reports, which must leave training as it would have been)."""
        return self._gather(self._uniform(batch, rng), length)

    def _gather(self, refs: list[tuple[int, int]], length: int):
        batch = len(refs)
        data = {k: np.empty((batch, length, *self.spaces[k].shape), self.spaces[k].dtype)
                for k in self.data_keys}
        carry = {k: np.empty((batch, *self.spaces[k].shape), self.spaces[k].dtype)
                 for k in self.latent_keys}
        for b, (stream, start) in enumerate(refs):
            s = self.streams[stream]
            for pos, chunk, lo, hi in self._pieces(start, start + length):
                for k in self.data_keys:
                    data[k][b, pos:pos + hi - lo] = s.chunks[chunk][k][lo:hi]
            cid, off = divmod(start, self.chunk)
            for k in self.latent_keys:
                carry[k][b] = s.chunks[cid][k][off]
        return data, carry, np.array(refs, np.int64).reshape(batch, 2)

    def update(self, ref: np.ndarray, latents: dict[str, np.ndarray]) -> None:
        """Write latents {key: (batch, length − 1, ...)} into steps 1.. of the windows in `ref`."""
        for b, (stream, start) in enumerate(ref.tolist()):
            s = self.streams[stream]
            for pos, chunk, lo, hi in self._pieces(start + 1, start + self.length):
                for k in self.latent_keys:
                    s.chunks[chunk][k][lo:hi] = latents[k][b, pos:pos + hi - lo]

    def save(self, directory: Path) -> None:
        """Write the held steps, queue, counters and generator state into `directory`.

        Steps are written chunk by chunk (views, no copy), so saving needs no second replay's worth
        of memory."""
        arrays, meta = {}, {"streams": {}, "queue": list(self.queue), "added": self.added,
                            "size": self.size, "rng": self.rng.bit_generator.state}
        for stream, s in self.streams.items():
            meta["streams"][stream] = [s.start, s.end, s.online]
            for _, chunk, lo, hi in self._pieces(s.start, s.end):
                for k in self.spaces:
                    arrays[f"{stream}/{chunk}/{k}"] = s.chunks[chunk][k][lo:hi]
        np.savez(Path(directory) / ARRAYS, **arrays)
        (Path(directory) / STATE).write_text(json.dumps(meta))

    @staticmethod
    def read_state(path: Path) -> dict:
        """The queue, counters and generator state that `save` wrote to `path` (its STATE file)."""
        meta = json.loads(Path(path).read_text())
        missing = {"streams", "queue", "added", "size", "rng"} - set(meta)
        if missing:
            raise ValueError(f"no {', '.join(sorted(missing))}")
        return meta

    def load(self, path: Path, meta: dict) -> None:
        """Restore what `save` wrote into this (empty) buffer of the same spaces: the steps from
        `path` (its ARRAYS file), everything else from `meta` (as `read_state` returns it)."""
        with np.load(path) as arrays:
            for stream, (start, end, online) in meta["streams"].items():
                s = self.streams[int(stream)] = _Stream()
                s.start, s.end, s.online = start, end, online
                for _, chunk, lo, hi in self._pieces(start, end):
                    for k in self.spaces:
                        self._chunk(s, chunk)[k][lo:hi] = arrays[f"{stream}/{chunk}/{k}"]
        self.queue = collections.deque(tuple(item) for item in meta["queue"])
        self.added, self.size = meta["added"], meta["size"]
        self.rng.bit_generator.state = meta["rng"]

    # ---- storage -----------------------------------------------------------------------------

    def _pieces(self, start: int, stop: int):
        """Split steps [start, stop) at chunk borders: (offset from start, chunk id, lo, hi)."""
        pos = start
        while pos < stop:
            chunk, lo = divmod(pos, self.chunk)
            hi = min(self.chunk, lo + stop - pos)
            yield pos - start, chunk, lo, hi
            pos += hi - lo

    def _chunk(self, s: _Stream, chunk: int) -> dict[str, np.ndarray]:
        if chunk not in s.chunks:
            s.chunks[chunk] = {k: np.zeros((self.chunk, *sp.shape), sp.dtype) for k, sp in self.spaces.items()}
        return s.chunks[chunk]

    def _write(self, s: _Stream, index: int, step: dict) -> None:
        chunk, off = divmod(index, self.chunk)
        arrays = self._chunk(s, chunk)
        for k in self.spaces:
            arrays[k][off] = step[k]

    def _evict(self) -> None:
        """Drop the oldest held step of all streams."""
        def order(s: _Stream) -> int:
            chunk, off = divmod(s.start, self.chunk)
            return int(s.chunks[chunk][_ORDER][off])
        s = min((s for s in self.streams.values() if s.end > s.start), key=order)
        s.start += 1
        self.size -= 1
        if s.start % self.chunk == 0:
            del s.chunks[s.start // self.chunk - 1]

    def _uniform(self, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        ids = list(self.streams)
        counts = np.array([self.streams[i].windows(self.length) for i in ids], np.int64)
        total = int(counts.sum())
        if count and not total:
            raise ValueError(f"replay holds no window of {self.length} steps yet")
        index = rng.integers(total, size=count) if count else np.zeros(0, np.int64)
        ends = np.cumsum(counts)
        which = np.searchsorted(ends, index, side="right")
        return [(ids[w], self.streams[ids[w]].start + int(i - ends[w] + counts[w]))
                for w, i in zip(which, index)]
