import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest

from suites.base import SuiteError
from suites.minecraft import (ACTIONS, ITEMS, NOOP, SUITES, ActionShaper, Minecraft,
                              MilestoneReward, flatten_observation, inventory_counts, make_env)

EXPECTED_ACTIONS = (
    "noop", "attack", "turn_up", "turn_down", "turn_left", "turn_right", "forward", "back", "left",
    "right", "jump", "place_dirt", "craft_planks", "craft_stick", "craft_crafting_table",
    "place_crafting_table", "craft_wooden_pickaxe", "craft_stone_pickaxe", "craft_iron_pickaxe",
    "equip_stone_pickaxe", "equip_wooden_pickaxe", "equip_iron_pickaxe", "craft_furnace",
    "place_furnace", "smelt_iron_ingot",
)
INDEX = {name: i for i, (name, _) in enumerate(ACTIONS)}


def changed(action):
    """The keys of a MineRL action dict that differ from the no-op."""
    return {k: v for k, v in action.items()
            if not np.array_equal(np.asarray(v), np.asarray(NOOP[k]))}


def test_the_25_actions_of_the_spec():
    assert tuple(name for name, _ in ACTIONS) == EXPECTED_ACTIONS
    shaper = ActionShaper()
    assert changed(shaper(INDEX["noop"])) == {}
    assert changed(shaper(INDEX["attack"])) == {"attack": 1}
    assert list(changed(shaper(INDEX["turn_left"]))["camera"]) == [0, -15]
    assert changed(shaper(INDEX["craft_planks"])) == {"craft": "planks"}
    assert changed(shaper(INDEX["craft_iron_pickaxe"])) == {"nearbyCraft": "iron_pickaxe"}
    assert changed(shaper(INDEX["equip_stone_pickaxe"])) == {"equip": "stone_pickaxe"}
    assert changed(shaper(INDEX["place_furnace"])) == {"place": "furnace"}
    assert changed(shaper(INDEX["smelt_iron_ingot"])) == {"nearbySmelt": "iron_ingot"}


def test_jump_is_sticky_for_10_steps():
    shaper = ActionShaper(sticky_jump=10)
    actions = [shaper(INDEX["jump"])] + [shaper(INDEX["attack"]) for _ in range(12)]
    assert [a["jump"] for a in actions] == [1] * 10 + [0] * 3
    assert [a["forward"] for a in actions] == [1] * 10 + [0] * 3
    assert all(a["attack"] == 1 for a in actions[1:])
    shaper.reset()
    assert shaper(INDEX["noop"])["jump"] == 0


def test_pitch_is_limited_to_60_degrees():
    shaper = ActionShaper(pitch_limit=60)
    pitches = [shaper(INDEX["turn_down"])["camera"][0] for _ in range(6)]
    assert pitches == [15, 15, 15, 15, 0, 0] and shaper.pitch == 60
    moved = shaper(INDEX["turn_up"])["camera"]
    assert list(moved) == [-15, 0] and shaper.pitch == 45
    assert list(shaper(INDEX["turn_right"])["camera"]) == [0, 15]  # yaw is free
    for _ in range(12):
        shaper(INDEX["turn_up"])
    assert shaper.pitch == -60
    shaper.reset()
    assert shaper.pitch == 0


def inventory(**counts):
    return {item: counts.get(item, 0) for item in ITEMS}


def test_milestones_once_per_episode_and_not_for_items_held_at_start():
    reward = MilestoneReward()
    reward.reset(inventory(log=2), health=1.0)
    assert reward(inventory(log=3), 1.0) == 0  # held at the start
    assert reward(inventory(log=1, planks=4), 1.0) == 1
    assert reward(inventory(log=1, planks=8), 1.0) == 0
    assert reward(inventory(log=1), 1.0) == 0
    assert reward(inventory(log=1, planks=1), 1.0) == 0  # regained: still once
    assert reward(inventory(log=1, stick=2, crafting_table=1), 1.0) == 2
    assert reward(inventory(diamond=1), 0.5) == pytest.approx(1 - 0.005)
    assert reward(inventory(diamond=1), 0.75) == pytest.approx(0.0025)
    reward.reset(inventory(), health=1.0)
    assert reward(inventory(log=1), 1.0) == 1  # a new episode pays again


def test_all_twelve_milestones_and_full_health_give_12():
    reward = MilestoneReward()
    reward.reset(inventory(), health=1.0)
    total = sum(reward(inventory(**{item: 1 for item in ITEMS[:n]}), 1.0) for n in range(13))
    assert total == 12 >= SUITES["minecraft"].scoring.success


def test_inventory_counts_both_kinds_of_log():
    counts = inventory_counts({"air": 30, "log": 2, "log2": 3, "dirt": 7}, ("air", "dirt", "log"))
    np.testing.assert_array_equal(counts, [30, 7, 5])
    assert counts.dtype == np.float32


def raw_observation(life=20.0, food=20, air=300, mainhand="air", **items):
    return {"pov": np.full((64, 64, 3), 7, np.uint8),
            "inventory": {**dict.fromkeys((*ITEMS, "dirt", "log2"), 0), "air": 36, **items},
            "equipped_items": {"mainhand": {"type": mainhand}},
            "life_stats": {"life": life, "food": food, "air": air}}


def test_flatten_observation():
    obs = flatten_observation(raw_observation(life=10.0, food=5, air=150, mainhand="iron_pickaxe",
                                              log=1, log2=1, dirt=4),
                              ("air", "dirt", "log"), ("air", "iron_pickaxe", "other"))
    np.testing.assert_array_equal(obs["inventory"], [36, 4, 2])
    np.testing.assert_array_equal(obs["equipped"], [0, 1, 0])
    assert (obs["health"], obs["hunger"], obs["breath"]) == (0.5, 0.25, 0.5)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8


class ScriptedMineRL:
    """Plays back MineRL observations (`(raw, died, info)` per step) for the adapter's episode
    logic; MineRL itself needs Java 8 and cannot be installed here."""

    observation_space = {
        "inventory": SimpleNamespace(spaces={k: None for k in raw_observation()["inventory"]}),
        "equipped_items": {"mainhand": {"type": SimpleNamespace(
            values=np.array(["air", "iron_pickaxe", "other"]))}},
    }

    def __init__(self, script):
        self.script, self.actions = list(script), []

    def reset(self):
        return raw_observation(dirt=3)

    def step(self, action):
        self.actions.append(action)
        raw, died, info = self.script.pop(0)
        return raw, 0.0, died, info

    def close(self):
        pass


def protocol(**knobs):
    return {**SUITES["minecraft"].protocol, **knobs}


def test_adapter_episode_rewards_and_death_is_terminal():
    script = [(raw_observation(dirt=1, log=1), False, {}),
              (raw_observation(life=10.0, dirt=5, log2=2, planks=1), False, {}),
              (raw_observation(life=0.0), True, {})]
    game = ScriptedMineRL(script)
    env = Minecraft(game, protocol())
    assert env.act_space["action"].discrete == 25
    first = env.step({"action": np.int32(0)})
    assert first["is_first"] and first["reward"] == 0
    assert set(first) == set(env.obs_space)
    steps = [env.step({"action": np.int32(INDEX["jump"])}) for _ in range(3)]
    assert [float(o["reward"]) for o in steps] == pytest.approx([1, 1 - 0.005, -0.005])
    keys = [k for k in sorted(raw_observation()["inventory"]) if k != "log2"]  # folds into log
    dirt, log = keys.index("dirt"), keys.index("log")
    assert steps[1]["inventory"][log] == 2
    assert [o["inventory_max"][dirt] for o in steps] == [3, 5, 5]
    assert [bool(o["is_last"]) for o in steps] == [False, False, True]
    assert steps[-1]["is_terminal"]
    assert all(a["jump"] == 1 for a in game.actions)
    assert env.step({"action": np.int32(0)})["is_first"]


def test_adapter_time_limit_is_last_not_terminal_and_errors_end_the_episode():
    env = Minecraft(ScriptedMineRL([(raw_observation(), False, {})] * 3), protocol(length=3))
    env.step({"action": np.int32(0)})
    steps = [env.step({"action": np.int32(0)}) for _ in range(3)]
    assert [bool(o["is_last"]) for o in steps] == [False, False, True]
    assert not steps[-1]["is_terminal"]

    broken = {"error": "Connection timed out!"}
    env = Minecraft(ScriptedMineRL([(raw_observation(log=1), False, {}),
                                    (raw_observation(diamond=64), True, broken)]), protocol())
    env.step({"action": np.int32(0)})
    before = env.step({"action": np.int32(0)})
    after = env.step({"action": np.int32(0)})
    assert after["is_last"] and not after["is_terminal"] and after["reward"] == 0
    np.testing.assert_array_equal(after["inventory"], before["inventory"])


@pytest.mark.skipif(importlib.util.find_spec("minerl") is not None, reason="MineRL is installed")
def test_missing_minerl_names_what_to_install():
    with pytest.raises(SuiteError, match=r"minerl==0\.4\.4.*") as error:
        make_env("minecraft_diamond", 0, 0)
    assert "Java 8" in str(error.value) and "\n" not in str(error.value)


def test_unknown_task_names_the_valid_one():
    with pytest.raises(SuiteError, match="minecraft_diamond"):
        make_env("minecraft_diamonds", 0, 0)
