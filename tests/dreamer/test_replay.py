import numpy as np
import pytest

from dreamer.env import Space
from dreamer.replay import ARRAYS, STATE, Replay

L = 5  # window length in these tests


def make(capacity=1000, online=False, chunk=4, seed=0):
    """Each step's `where` is (stream, index in stream), so a window shows where it came from."""
    return Replay({"where": Space((2,), "int64"), "is_first": Space((), "bool"), "action": Space((), "int32")},
                  {"deter": Space((3,), "float32"), "stoch": Space((2,), "uint8")},
                  capacity, L, online, seed, chunk=chunk)


def step(stream, index):
    return {"where": np.array([stream, index]), "is_first": index == 0, "action": np.int32(index % 2),
            "deter": np.full(3, 10.0 * index + stream, np.float32), "stoch": np.array([index % 7, stream], np.uint8)}


def fill(replay, counts):
    """Interleave adds: stream s gets counts[s] steps, round-robin while any is left."""
    done = [0] * len(counts)
    while done != list(counts):
        for s, n in enumerate(counts):
            if done[s] < n:
                replay.add(s, step(s, done[s]))
                done[s] += 1


def test_windows_stay_inside_one_stream_and_behind_its_newest_step():
    replay = make(capacity=30, chunk=4)
    fill(replay, [20, 13, 6])  # 39 adds: the first 9 (indices 0..2 of each stream) are evicted
    held = {s: (st.start, st.end) for s, st in replay.streams.items()}
    assert held == {0: (3, 20), 1: (3, 13), 2: (3, 6)}  # stream 2 holds no full window
    seen = set()
    for _ in range(40):
        data, carry, ref = replay.sample(8)
        assert data["where"].shape == (8, L, 2) and carry["deter"].shape == (8, 3)
        for b in range(8):
            stream, index = data["where"][b, :, 0], data["where"][b, :, 1]
            assert (stream == stream[0]).all()
            np.testing.assert_array_equal(index, index[0] + np.arange(L))
            start, end = held[int(stream[0])]
            assert start <= index[0] and index[-1] < end
            assert tuple(ref[b]) == (stream[0], index[0])
            np.testing.assert_array_equal(carry["deter"][b], step(stream[0], index[0])["deter"])
            seen.add((int(stream[0]), int(index[0])))
    assert seen == {(0, i) for i in range(3, 16)} | {(1, i) for i in range(3, 9)}  # all, and only, these


def test_eviction_keeps_the_newest_capacity_steps():
    replay = make(capacity=10)
    fill(replay, [13, 12])  # 25 adds alternating 0,1,0,1,…; the newest 10 are adds 15..24
    assert len(replay) == 10
    assert (replay.streams[0].start, replay.streams[0].end) == (8, 13)  # adds 16,18,20,22,24
    assert (replay.streams[1].start, replay.streams[1].end) == (7, 12)  # adds 15,17,19,21,23
    replay.add(0, step(0, 13))  # evicts stream 1's index 7, the oldest
    assert (replay.streams[1].start, len(replay)) == (8, 10)
    # Chunks hold 4 steps; only those with held steps remain (0..7 were freed).
    assert (set(replay.streams[0].chunks), set(replay.streams[1].chunks)) == ({2, 3}, {2})


def test_online_queue_delivers_each_fresh_window_once_then_samples_uniformly():
    replay = make(online=True)
    fill(replay, [2 * L + 1, L])  # completes windows (0,0), (1,0), (0,L) in that order
    _, _, ref = replay.sample(2)
    assert ref.tolist() == [[0, 0], [1, 0]]
    _, _, ref = replay.sample(3)
    assert ref[0].tolist() == [0, L]  # the last queued window, then uniform ones
    assert not replay.queue
    for i in range(L, 2 * L):
        replay.add(1, step(1, i))
    assert list(replay.queue) == [(1, L)]


def test_queued_window_evicted_before_use_is_skipped():
    replay = make(capacity=2 * L, online=True)
    fill(replay, [3 * L])  # windows at 0, L, 2L were queued; only 2L..3L−1 and L..2L−1 are held
    _, _, ref = replay.sample(2)
    assert ref.tolist() == [[0, L], [0, 2 * L]]


def test_update_writes_training_latents_into_steps_after_the_context_step():
    replay = make()
    fill(replay, [L + 1])  # windows start at 0 or 1
    _, carry, ref = replay.sample(16)
    assert sorted(set(ref[:, 1].tolist())) == [0, 1]
    first = int(np.flatnonzero(ref[:, 1] == 0)[0])
    np.testing.assert_array_equal(carry["deter"][first], step(0, 0)["deter"])  # the policy's latent
    deter = np.zeros((16, L - 1, 3), np.float32)
    stoch = np.zeros((16, L - 1, 2), np.int64)
    deter[first] = np.arange(1, L)[:, None] * [1.5, 2.5, 3.5]
    stoch[first] = 200
    replay.update(ref[first:first + 1], {"deter": deter[first:first + 1], "stoch": stoch[first:first + 1]})
    _, carry, ref = replay.sample(16)
    one = int(np.flatnonzero(ref[:, 1] == 1)[0])
    np.testing.assert_array_equal(carry["deter"][one], [1.5, 2.5, 3.5])  # step 1 of the trained window
    np.testing.assert_array_equal(carry["stoch"][one], [200, 200])
    zero = int(np.flatnonzero(ref[:, 1] == 0)[0])
    np.testing.assert_array_equal(carry["deter"][zero], step(0, 0)["deter"])  # context step unchanged


def test_save_load_gives_the_same_samples(tmp_path):
    replay = make(capacity=40, online=True, chunk=4)
    fill(replay, [30, 22])
    replay.sample(3)  # leaves part of the queue and moves the generator
    replay.save(tmp_path)
    after = [replay.sample(4) for _ in range(5)]
    restored = make(capacity=40, online=True, chunk=4, seed=123)
    restored.load(tmp_path / ARRAYS, Replay.read_state(tmp_path / STATE))
    assert len(restored) == len(replay) == 40
    for data, carry, ref in after:
        d2, c2, r2 = restored.sample(4)
        np.testing.assert_array_equal(ref, r2)
        for k in data:
            np.testing.assert_array_equal(data[k], d2[k])
        for k in carry:
            np.testing.assert_array_equal(carry[k], c2[k])
    replay.add(0, step(0, 30))
    restored.add(0, step(0, 30))
    assert restored.streams[0].start == replay.streams[0].start  # eviction order survived too


def test_sampling_before_any_full_window_fails_clearly():
    replay = make()
    fill(replay, [L - 1, L - 1])
    assert replay.windows() == 0
    with pytest.raises(ValueError, match="no window of 5 steps"):
        replay.sample(1)


def test_an_abandoned_episode_ends_with_is_last_and_a_zero_action():
    """Stream 0: an episode of 4 steps cut off without is_last (its environment rebuilt), then a
    new one. The cut episode's final step must be sampled as its last, with its action zeroed;
    an episode that ended properly keeps its last step as it was written."""
    replay = Replay({"is_first": Space((), "bool"), "is_last": Space((), "bool"), "action": Space((2,), "float32")},
                    {"deter": Space((1,), "float32")}, 100, 8, False, 0)

    def add(first, last):
        replay.add(0, {"is_first": first, "is_last": last, "action": np.ones(2, np.float32), "deter": np.zeros(1)})

    for i in range(4):
        add(i == 0, False)  # abandoned: its last step has no is_last
    for i in range(4):
        add(i == 0, i == 3)  # a complete episode
    data, _, _ = replay.sample(1)
    np.testing.assert_array_equal(data["is_last"][0], [0, 0, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(data["action"][0, :, 0], [1, 1, 1, 0, 1, 1, 1, 1])
