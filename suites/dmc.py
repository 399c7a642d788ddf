"""DeepMind Control: the proprio (18 tasks) and vision (20 tasks) suites of the published curves.

Proprio observations are dm_control's own keys, each flattened to a float32 vector; vision
observations are one 64×64 RGB image and nothing else. Episodes keep dm_control's own
1000-frame limit; a step is terminal only when dm_control reports discount 0.
"""
from __future__ import annotations

import os

import numpy as np

from dreamer.env import Space, env_seed, signal_spaces, signals
from suites.base import Resources, ScoringRule, Suite

PROPRIO_TASKS = (
    "dmc_acrobot_swingup", "dmc_ball_in_cup_catch", "dmc_cartpole_balance",
    "dmc_cartpole_balance_sparse", "dmc_cartpole_swingup", "dmc_cartpole_swingup_sparse",
    "dmc_cheetah_run", "dmc_finger_spin", "dmc_finger_turn_easy", "dmc_finger_turn_hard",
    "dmc_hopper_hop", "dmc_hopper_stand", "dmc_pendulum_swingup", "dmc_reacher_easy",
    "dmc_reacher_hard", "dmc_walker_run", "dmc_walker_stand", "dmc_walker_walk",
)
VISION_TASKS = tuple(sorted((*PROPRIO_TASKS, "dmc_quadruped_run", "dmc_quadruped_walk")))

# Camera 0 shows the quadruped from too far away to see its legs; the reference uses camera 2.
CAMERAS = {"quadruped": 2}

# Frames per agent step, the suites' default for run.action_repeat (the 2024-12 code line uses 1).
# The run's config drives the environment's repeat, so logged frames are frames stepped.
REPEAT = 2
# `size`: image height, width.
PROTOCOLS = {
    "dmc_proprio": {},
    "dmc_vision": {"size": (64, 64)},
}


def split_task(task: str) -> tuple[str, str]:
    """'dmc_ball_in_cup_catch' → ('ball_in_cup', 'catch'); 'dmc_walker_walk' → ('walker', 'walk')."""
    name = task.removeprefix("dmc_")
    if name.startswith("ball_in_cup_"):
        return "ball_in_cup", name.removeprefix("ball_in_cup_")
    domain, _, rest = name.partition("_")
    return domain, rest


def scale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Agent action (A,) in [-1, 1] (clipped first) → the spec's bounds [low, high], (A,)."""
    action = np.clip(action, -1.0, 1.0)
    return low + (action + 1.0) / 2.0 * (high - low)


class DMC:
    """A dm_control environment as an `Env` (dreamer/env.py).

    `camera` None gives the proprio observations, an id gives only the rendered `image`.
    """

    def __init__(self, env, repeat: int, camera: int | None = None,
                 size: tuple[int, int] = (64, 64), view: int = 0):
        self._env = env
        self._repeat = repeat
        self._camera = camera
        self._view = view  # the camera of `render`
        self._size = tuple(size)
        self._done = True
        spec = env.action_spec()
        self._low, self._high = spec.minimum, spec.maximum
        if camera is None:
            obs = {k: Space((int(np.prod(v.shape)),), "float32")
                   for k, v in env.observation_spec().items()}
        else:
            obs = {"image": Space((*self._size, 3), "uint8", low=0, high=255)}
        self.obs_space = {**obs, **signal_spaces()}
        self.act_space = {"action": Space(spec.shape, "float32", low=-1.0, high=1.0)}

    def step(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._done:
            self._done = False
            return self._obs(self._env.reset(), 0.0, is_first=True)
        action = scale_action(np.asarray(action["action"]), self._low, self._high)
        reward = 0.0
        for _ in range(self._repeat):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0
            if time_step.last():
                break
        self._done = time_step.last()
        return self._obs(time_step, reward, is_last=self._done,
                         is_terminal=self._done and time_step.discount == 0)

    def _obs(self, time_step, reward, is_first=False, is_last=False, is_terminal=False):
        if self._camera is None:
            obs = {k: np.asarray(v, np.float32).reshape(-1)
                   for k, v in time_step.observation.items()}
        else:
            obs = {"image": self._env.physics.render(*self._size, camera_id=self._camera)}
        return {**obs, **signals(reward, is_first, is_last, is_terminal)}

    def render(self) -> np.ndarray:
        """A 240×320 frame from the task's camera (the one vision runs observe)."""
        return self._env.physics.render(240, 320, camera_id=self._view)

    def close(self) -> None:
        self._env.close()


def make_env(task: str, index: int, seed: int, protocol: dict | None = None,
             logdir: str | None = None, *, repeat: int = REPEAT, suite: str = "dmc_proprio") -> DMC:
    """Environment `index` of a `suite` run of `task`, seeded seed·1000 + index, stepping `repeat`
    frames per agent step (the run's run.action_repeat)."""
    definition = SUITES[suite]
    protocol = definition.check_protocol(protocol or {})
    domain, name = split_task(definition.check_task(task))
    # Rendering must use EGL on headless machines; the variable is read when dm_control loads.
    os.environ.setdefault("MUJOCO_GL", "egl")
    from dm_control import suite as dmc_suite

    env = dmc_suite.load(domain, name, task_kwargs={"random": env_seed(seed, index)})
    view = CAMERAS.get(domain, 0)
    if suite == "dmc_proprio":
        return DMC(env, repeat, view=view)
    return DMC(env, repeat, view, protocol["size"], view)


def make_proprio_env(task: str, index: int, seed: int, protocol: dict | None = None,
                     logdir: str | None = None, *, repeat: int = REPEAT) -> DMC:
    """`make_env` for dmc_proprio, by a name that a run directory can record (dreamer.env.factory_name)."""
    return make_env(task, index, seed, protocol, logdir, repeat=repeat, suite="dmc_proprio")


def make_vision_env(task: str, index: int, seed: int, protocol: dict | None = None,
                    logdir: str | None = None, *, repeat: int = REPEAT) -> DMC:
    """`make_env` for dmc_vision, by a name that a run directory can record."""
    return make_env(task, index, seed, protocol, logdir, repeat=repeat, suite="dmc_vision")


FACTORIES = {"dmc_proprio": make_proprio_env, "dmc_vision": make_vision_env}


def _suite(name: str, tasks: tuple[str, ...], budget: int, hours: float, video_every: int = 0) -> Suite:
    return Suite(
        name=name,
        tasks=tasks,
        budget=budget,
        config=("size=size12m", "run.train_ratio=512", "run.envs=4",
                f"run.action_repeat={REPEAT}", f"run.video_every={video_every}"),
        protocol=PROTOCOLS[name],
        scoring=ScoringRule(
            "mean return of episodes ending in the last 10% of the budget, divided by 1000",
            window=(budget * 9 // 10, budget), normalise="scale", scale=1000.0),
        resources=Resources(gpus=1, cpus=6, mem_gb=32, hours=hours),
        make_env=FACTORIES[name],
        published=name,
    )


SUITES = {
    "dmc_proprio": _suite("dmc_proprio", PROPRIO_TASKS, 500_000, 24.0),
    # 1,000 episodes of 500 agent steps: one of every 100 recorded
    "dmc_vision": _suite("dmc_vision", VISION_TASKS, 1_000_000, 48.0, video_every=100),
}
