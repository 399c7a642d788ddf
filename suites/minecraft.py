"""Minecraft diamond (suites/README.md, "minecraft") on MineRL 0.4.4.

The task logic — the 25 actions, sticky jump, pitch limit, milestone and health rewards and the
observation layout — is plain Python below and runs without the game. MineRL (and Java 8, which it
launches Minecraft with) is needed only to build the environment; it is imported in `make_env`.
"""
from __future__ import annotations

import shutil
from typing import Mapping

import numpy as np

from dreamer.env import Space, env_seed, signal_spaces, signals
from suites.base import Resources, ScoringRule, Suite, SuiteError, check_no_repeat

TASKS = ("minecraft_diamond",)

# The milestones, each worth +1 the first time it enters the inventory in an episode.
ITEMS = ("log", "planks", "stick", "crafting_table", "wooden_pickaxe", "cobblestone",
         "stone_pickaxe", "iron_ore", "furnace", "iron_ingot", "iron_pickaxe", "diamond")
HEALTH_SCALE = 0.01

# MineRL's action dict with nothing pressed; camera is (Δpitch, Δyaw) in degrees, +pitch looks down.
NOOP = {"camera": (0.0, 0.0), "forward": 0, "back": 0, "left": 0, "right": 0, "jump": 0,
        "sneak": 0, "sprint": 0, "attack": 0, "place": "none", "equip": "none", "craft": "none",
        "nearbyCraft": "none", "nearbySmelt": "none"}
ACTIONS = (
    ("noop", {}),
    ("attack", {"attack": 1}),
    ("turn_up", {"camera": (-15.0, 0.0)}),
    ("turn_down", {"camera": (15.0, 0.0)}),
    ("turn_left", {"camera": (0.0, -15.0)}),
    ("turn_right", {"camera": (0.0, 15.0)}),
    ("forward", {"forward": 1}),
    ("back", {"back": 1}),
    ("left", {"left": 1}),
    ("right", {"right": 1}),
    ("jump", {"jump": 1, "forward": 1}),
    ("place_dirt", {"place": "dirt"}),
    ("craft_planks", {"craft": "planks"}),
    ("craft_stick", {"craft": "stick"}),
    ("craft_crafting_table", {"craft": "crafting_table"}),
    ("place_crafting_table", {"place": "crafting_table"}),
    ("craft_wooden_pickaxe", {"nearbyCraft": "wooden_pickaxe"}),
    ("craft_stone_pickaxe", {"nearbyCraft": "stone_pickaxe"}),
    ("craft_iron_pickaxe", {"nearbyCraft": "iron_pickaxe"}),
    ("equip_stone_pickaxe", {"equip": "stone_pickaxe"}),
    ("equip_wooden_pickaxe", {"equip": "wooden_pickaxe"}),
    ("equip_iron_pickaxe", {"equip": "iron_pickaxe"}),
    ("craft_furnace", {"nearbyCraft": "furnace"}),
    ("place_furnace", {"place": "furnace"}),
    ("smelt_iron_ingot", {"nearbySmelt": "iron_ingot"}),
)

# `length`: agent steps per episode (is_last, not terminal); `break_speed`: block breaking
# multiplier; `sticky_jump`: steps a jump keeps going; `pitch_limit`: ± degrees the view may tilt.
PROTOCOL = {"size": (64, 64), "break_speed": 100.0, "length": 36_000, "sticky_jump": 10,
            "pitch_limit": 60.0}

INSTALL = ("minecraft needs MineRL 0.4.4, which runs Minecraft on Java 8: install a JDK 8 "
           "(e.g. apt-get install openjdk-8-jdk) and `pip install minerl==0.4.4`")


class ActionShaper:
    """Agent action index → MineRL action dict, with sticky jump and the pitch limit.

    A jump keeps jumping and moving forward for `sticky_jump` steps (the jump step included).
    A camera move that would tilt the view beyond ±`pitch_limit` degrees keeps the pitch instead.
    """

    def __init__(self, sticky_jump: int = 10, pitch_limit: float = 60.0):
        self._sticky_jump = sticky_jump
        self._pitch_limit = pitch_limit
        self.reset()

    def reset(self) -> None:
        self._jump_left = 0
        self.pitch = 0.0

    def __call__(self, index: int) -> dict:
        action = {**NOOP, **ACTIONS[index][1]}
        if action["jump"]:
            self._jump_left = self._sticky_jump
        if self._jump_left > 0:
            action["jump"], action["forward"] = 1, 1
            self._jump_left -= 1
        pitch, yaw = action["camera"]
        if abs(self.pitch + pitch) > self._pitch_limit:
            pitch = 0.0
        self.pitch += pitch
        action["camera"] = np.array([pitch, yaw], np.float32)
        return action


class MilestoneReward:
    """+1 the first time in an episode each of ITEMS enters the inventory, plus 0.01·Δhealth.

    Items already held at the start of the episode give nothing. `health` is life / 20.
    """

    def __init__(self, items: tuple[str, ...] = ITEMS, health_scale: float = HEALTH_SCALE):
        self._items = items
        self._scale = health_scale

    def reset(self, inventory: Mapping[str, float], health: float) -> None:
        self._seen = {item: inventory[item] > 0 for item in self._items}
        self._health = health

    def __call__(self, inventory: Mapping[str, float], health: float) -> float:
        reward = 0.0
        for item in self._items:
            if inventory[item] > 0 and not self._seen[item]:
                self._seen[item] = True
                reward += 1.0
        reward += self._scale * (health - self._health)
        self._health = health
        return reward


def inventory_counts(inventory: Mapping[str, int], keys: tuple[str, ...]) -> np.ndarray:
    """MineRL inventory dict → counts (len(keys),) float32; the two kinds of log count as `log`."""
    return np.array([inventory[k] + (inventory.get("log2", 0) if k == "log" else 0)
                     for k in keys], np.float32)


def flatten_observation(raw: dict, inventory_keys: tuple[str, ...],
                        equip_keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """MineRL observation → image (H, W, 3) uint8, inventory (I,), equipped one-hot (E,),
    health, hunger, breath in [0, 1]."""
    equipped = np.zeros(len(equip_keys), np.float32)
    equipped[equip_keys.index(raw["equipped_items"]["mainhand"]["type"])] = 1.0
    life = raw["life_stats"]
    return {"image": np.asarray(raw["pov"], np.uint8),
            "inventory": inventory_counts(raw["inventory"], inventory_keys),
            "equipped": equipped,
            "health": np.float32(life["life"] / 20),
            "hunger": np.float32(life["food"] / 20),
            "breath": np.float32(life["air"] / 300)}


class Minecraft:
    """The diamond task on a MineRL env (built by `make_env`) as an `Env` (dreamer/env.py)."""

    def __init__(self, env, protocol: dict):
        self._env = env
        space = env.observation_space
        self._inventory_keys = tuple(k for k in sorted(space["inventory"].spaces) if k != "log2")
        self._equip_keys = tuple(space["equipped_items"]["mainhand"]["type"].values.tolist())
        self._length = protocol["length"]
        self._shaper = ActionShaper(protocol["sticky_jump"], protocol["pitch_limit"])
        self._reward = MilestoneReward()
        self._done = True
        items = len(self._inventory_keys)
        self.obs_space = {
            "image": Space((*protocol["size"], 3), "uint8", low=0, high=255),
            "inventory": Space((items,), "float32", low=0),
            "inventory_max": Space((items,), "float32", low=0),
            "equipped": Space((len(self._equip_keys),), "float32", low=0, high=1),
            "health": Space((), "float32"), "hunger": Space((), "float32"),
            "breath": Space((), "float32"), **signal_spaces()}
        self.act_space = {"action": Space((), "int32", discrete=len(ACTIONS))}

    def step(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._done:
            return self._reset()
        raw, _, died, info = self._env.step(self._shaper(int(action["action"])))
        self._steps += 1
        if "error" in info:
            # MineRL lost its connection and sends a random observation; end the episode on the
            # last real one instead.
            self._done = True
            return {**self._last, **signals(0.0, is_last=True)}
        obs = self._observe(raw)
        reward = self._reward(dict(zip(self._inventory_keys, obs["inventory"])), obs["health"])
        self._done = died or self._steps >= self._length
        return self._signals(obs, reward, is_last=self._done, is_terminal=died)

    def _reset(self) -> dict[str, np.ndarray]:
        obs = self._observe(self._env.reset(), first=True)
        self._reward.reset(dict(zip(self._inventory_keys, obs["inventory"])), obs["health"])
        self._shaper.reset()
        self._steps = 0
        self._done = False
        return self._signals(obs, 0.0, is_first=True)

    def _observe(self, raw: dict, first: bool = False) -> dict[str, np.ndarray]:
        obs = flatten_observation(raw, self._inventory_keys, self._equip_keys)
        self._max = obs["inventory"] if first else np.maximum(self._max, obs["inventory"])
        return {**obs, "inventory_max": self._max.copy()}

    def _signals(self, obs, reward, is_first=False, is_last=False, is_terminal=False):
        self._last = obs
        return {**obs, **signals(reward, is_first, is_last, is_terminal)}

    def close(self) -> None:
        self._env.close()


def _import_minerl():
    """MineRL's spec API, or one clear error naming what to install."""
    # MineRL 0.4.4 uses numpy aliases removed in numpy 1.24; restore them before importing it.
    for name, value in {"int": int, "float": float, "bool": bool, "object": object}.items():
        if name not in vars(np):
            setattr(np, name, value)
    try:
        from minerl.herobraine.env_spec import EnvSpec
        from minerl.herobraine.hero import handlers, mc
    except ImportError as error:
        raise SuiteError(f"{INSTALL} ({error})") from error
    if shutil.which("java") is None:
        raise SuiteError(f"{INSTALL} (no `java` on PATH)")
    return EnvSpec, handlers, mc


def diamond_spec(size: tuple[int, int], break_speed: float):
    """The MineRL env spec of the diamond task: a random survival world in clear weather at
    morning without mobs, every item observable and usable, faster block breaking; no MineRL
    rewards or time limit (both are applied by `Minecraft`)."""
    EnvSpec, handlers, mc = _import_minerl()

    class DiamondSpec(EnvSpec):
        def __init__(self):
            super().__init__(name="DreamerMinecraftDiamond-v0")

        def create_observables(self):
            return [handlers.POVObservation(tuple(size)),
                    handlers.FlatInventoryObservation(mc.ALL_ITEMS),
                    handlers.EquippedItemObservation(mc.ALL_ITEMS, _default="air", _other="other"),
                    handlers.ObservationFromLifeStats()]

        def create_actionables(self):
            items = dict(_other="none", _default="none")
            keys = ("forward", "back", "left", "right", "jump", "sneak", "sprint", "attack")
            return [*(handlers.KeybasedCommandAction(k, mc.INVERSE_KEYMAP[k]) for k in keys),
                    handlers.CameraAction(),
                    handlers.PlaceBlock(["none", *mc.ALL_ITEMS], **items),
                    handlers.EquipAction(["none", *mc.ALL_ITEMS], **items),
                    handlers.CraftAction(["none", *mc.ALL_ITEMS], **items),
                    handlers.CraftNearbyAction(["none", *mc.ALL_ITEMS], **items),
                    handlers.SmeltItemNearby(["none", *mc.ALL_ITEMS], **items)]

        def create_rewardables(self):
            return []

        def create_agent_start(self):
            return [handlers.AgentStartBreakSpeedMultiplier(break_speed)]

        def create_agent_handlers(self):
            return []

        def create_monitors(self):
            return []

        def create_server_initial_conditions(self):
            return [handlers.TimeInitialCondition(False, 23000),
                    handlers.WeatherInitialCondition("clear"),
                    handlers.SpawningInitialCondition(False)]

        def create_server_world_generators(self):
            return [handlers.DefaultWorldGenerator(force_reset=True)]

        def create_server_quit_producers(self):
            return [handlers.ServerQuitWhenAnyAgentFinishes()]

        def create_server_decorators(self):
            return []

        # Hooks for MineRL's human-demonstration datasets, of which this task has none.
        def is_from_folder(self, folder):
            return False

        def get_docstring(self):
            return ""

        def determine_success_from_rewards(self, rewards):
            return False

    return DiamondSpec()


def make_env(task: str, index: int, seed: int, protocol: dict | None = None,
             logdir: str | None = None, *, repeat: int = 1) -> Minecraft:
    """Environment `index` of a run of `task`, seeded seed·1000 + index."""
    suite = SUITES["minecraft"]
    check_no_repeat("minecraft", repeat)
    protocol = suite.check_protocol(protocol or {})
    suite.check_task(task)
    env = diamond_spec(protocol["size"], protocol["break_speed"]).make()
    env.seed(env_seed(seed, index))
    return Minecraft(env, protocol)


SUITES = {
    "minecraft": Suite(
        name="minecraft",
        tasks=TASKS,
        budget=100_000_000,
        config=("size=size200m", "run.train_ratio=32", "run.envs=16", "run.action_repeat=1"),
        protocol=PROTOCOL,
        scoring=ScoringRule(
            "fraction of runs that collect a diamond (return >= 11.1); "
            "mean return of episodes ending in the last 10% of the budget",
            window=(90_000_000, 100_000_000), normalise="none", success=11.1),
        # 16 Minecraft instances (a JVM each) beside the learner.
        resources=Resources(gpus=1, cpus=32, mem_gb=192, hours=24.0),
        make_env=make_env,
        published="minecraft_diamond",
    ),
}
