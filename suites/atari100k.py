"""Atari 100K: 26 games through ale-py's own Gymnasium environments (suites/README.md, "atari100k").

The Gymnasium env runs one emulator frame per call (`frameskip=1`); action repeat, max-pooling,
no-ops, the episode cap and resizing happen here, step for step as the reference's Atari adapter
does them, so each is an explicit protocol knob. ale-py 0.10 changed the low-level action API, so
the adapter never calls `ale.act` itself.
"""
from __future__ import annotations

import numpy as np

from dreamer.env import Space, env_seed, signal_spaces, signals
from suites.base import Resources, ScoringRule, Suite, SuiteError

GAMES = (
    "alien", "amidar", "assault", "asterix", "bank_heist", "battle_zone", "boxing", "breakout",
    "chopper_command", "crazy_climber", "demon_attack", "freeway", "frostbite", "gopher", "hero",
    "jamesbond", "kangaroo", "krull", "kung_fu_master", "ms_pacman", "pong", "private_eye", "qbert",
    "road_runner", "seaquest", "up_n_down",
)
TASKS = tuple(f"atari_{game}" for game in GAMES)

# REPEAT frames per agent step (the suite's run.action_repeat, which drives the environment); the
# observation is the max over the last `pool` frames rendered; `noops` is the largest number of
# random no-op frames at reset; `life_done` ends the episode on a life loss; `max_frames` caps an
# episode at that many frames stepped by the agent (no-ops not counted). The last three knobs are
# facts of the protocol that this adapter does not vary.
REPEAT = 4
PROTOCOLS = {
    "atari100k": {
        "pool": 2, "sticky": 0.0, "full_actions": False, "noops": 30,
        "life_done": False, "max_frames": 108_000, "size": (64, 64),
        "resize": "pillow.BILINEAR", "colour": "rgb", "clip_rewards": False,
    },
}
PROTOCOLS["atari"] = {**PROTOCOLS["atari100k"], "sticky": 0.25, "full_actions": True}
_FIXED = ("resize", "colour", "clip_rewards")

# ale-py 0.10.0 and 0.10.1 act with zero strength: every action is a no-op (fixed in 0.10.2).
_BROKEN_ALE = ("0.10.0", "0.10.1")


def pool_and_resize(frames: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Max over frames [(210, 160, 3) uint8, ...], resized with Pillow's bilinear filter (as the
    reference does) → (*size, 3) uint8."""
    from PIL import Image

    frame = np.max(np.stack(frames), axis=0)
    return np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.BILINEAR))


def check_ale_version(version: str) -> None:
    if version in _BROKEN_ALE:
        raise SuiteError(f"ale-py {version} ignores every action (zero strength); "
                         "install ale-py>=0.10.2: pip install -U 'ale-py>=0.10.2'")


class Atari:
    """One Atari game as an `Env` (dreamer/env.py), seeded once at construction."""

    def __init__(self, game: str, seed: int, protocol: dict, repeat: int):
        import ale_py
        import gymnasium as gym

        check_ale_version(ale_py.__version__)
        gym.register_envs(ale_py)
        self._p, self._repeat = protocol, repeat
        # max_num_frames_per_episode=0 turns off ALE's own cap, which would count the no-ops too.
        self._env = gym.make(
            f"ALE/{ale_py.registration.rom_id_to_name(game)}-v5", frameskip=1,
            repeat_action_probability=protocol["sticky"],
            full_action_space=protocol["full_actions"],
            max_num_frames_per_episode=0, disable_env_checker=True)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._done = True
        self._lives = 0
        self._frames = 0  # frames stepped by the agent in this episode
        self._buffers: list[np.ndarray] = []  # the last `pool` frames rendered, newest first
        self.obs_space = {"image": Space((*protocol["size"], 3), "uint8", low=0, high=255),
                          **signal_spaces()}
        self.act_space = {"action": Space((), "int32", discrete=int(self._env.action_space.n))}

    @property
    def ale(self):
        """The emulator, for frame counters and state snapshots in tests and diagnostics."""
        return self._env.unwrapped.ale

    @property
    def action_names(self) -> list[str]:
        """ALE names of the action indices, e.g. ['NOOP', 'FIRE', 'RIGHT', ...]."""
        return self._env.unwrapped.get_action_meanings()

    def step(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._done:
            return self._reset()
        reward, last = 0.0, False
        for repeat in range(self._repeat):
            frame, r, game_over, _, info = self._env.step(int(action["action"]))
            reward += r
            self._frames += 1
            # Only the last `pool` frames of a repeat are rendered: a step cut short by the game's
            # end before them shows the previous step's frames, as the reference's does.
            if repeat >= self._repeat - self._p["pool"]:
                self._render(frame)
            lost_life = 0 < info["lives"] < self._lives
            self._lives = info["lives"]
            last = (game_over or self._frames >= self._p["max_frames"]
                    or (self._p["life_done"] and lost_life))
            if last:
                break
        self._done = last
        # Every episode end is terminal, the frame cap included: the reference's choice
        # (suites/README.md, "atari100k").
        return self._obs(reward, is_last=last, is_terminal=last)

    def _reset(self) -> dict[str, np.ndarray]:
        # Only the first reset seeds the emulator; later ones continue its random stream.
        frame, info = self._env.reset(seed=self._seed)
        self._seed = None
        for _ in range(self._rng.integers(self._p["noops"] + 1)):
            frame, _, game_over, _, info = self._env.step(0)  # index 0 is NOOP in every action set
            if game_over:
                frame, info = self._env.reset()
        self._lives = info["lives"]
        self._frames = 0
        self._done = False
        self._buffers = [frame] * self._p["pool"]
        return self._obs(0.0, is_first=True)

    def _render(self, frame: np.ndarray) -> None:
        self._buffers = [frame, *self._buffers[:-1]]

    def _obs(self, reward, is_first=False, is_last=False, is_terminal=False):
        return {"image": pool_and_resize(self._buffers, self._p["size"]),
                **signals(reward, is_first, is_last, is_terminal)}

    def render(self) -> np.ndarray:
        """The emulator's full 210×160 screen."""
        return self.ale.getScreenRGB()

    def close(self) -> None:
        self._env.close()


def make_env(task: str, index: int, seed: int, protocol: dict | None = None,
             logdir: str | None = None, *, repeat: int = REPEAT) -> Atari:
    """Environment `index` of a run of `task` (e.g. "atari_pong"), seeded seed·1000 + index,
    stepping `repeat` frames per agent step (the run's run.action_repeat)."""
    suite = SUITES["atari100k"]
    protocol = suite.check_protocol(protocol or {})
    for key in _FIXED:
        if protocol[key] != suite.protocol[key]:
            raise SuiteError(f"atari protocol knob {key!r} is fixed to {suite.protocol[key]!r}")
    return Atari(suite.check_task(task).removeprefix("atari_"), env_seed(seed, index), protocol, repeat)


SUITES = {
    "atari100k": Suite(
        name="atari100k",
        tasks=TASKS,
        budget=440_000,  # runs go to 110K agent steps; the score is read at 400K frames
        config=("size=size200m", "run.train_ratio=256", "run.envs=1",
                f"run.action_repeat={REPEAT}", "run.video_every=20"),
        protocol=PROTOCOLS["atari100k"],
        scoring=ScoringRule(
            "mean return of training episodes ending in [390K, 400K] frames, "
            "human-normalised (x - random) / (human - random)",
            window=(390_000, 400_000), normalise="human"),
        resources=Resources(gpus=1, cpus=4, mem_gb=32, hours=24.0),
        make_env=make_env,
        published="atari100k",
    ),
}
