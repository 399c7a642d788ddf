"""The one fixed DreamerV3 configuration (dreamer/README.md), size presets and validated dotted overrides.

Everything a run depends on is a field here and is recorded in its run directory (dreamer/rundir.py).
Suites and variants change it only through `override(config, ["key=value", ...])`, so an unknown
key fails with the nearest valid names instead of being silently ignored. `check` says which
settings mean nothing a run can do.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import difflib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RSSMConfig:
    deter: int = 8192
    hidden: int = 1024
    stoch: int = 32
    classes: int = 64
    blocks: int = 8
    unimix: float = 0.01
    free_nats: float = 1.0


@dataclass
class ObsNetConfig:
    """The networks that encode observations into the RSSM and decode them back (agent.enc,
    agent.dec): a CNN for images, an MLP for vectors."""

    depth: int = 64
    mults: tuple[int, ...] = (2, 3, 4, 4)
    kernel: int = 5
    layers: int = 3  # MLP layers for vector inputs
    units: int = 1024


@dataclass
class HeadConfig:
    layers: int = 1
    units: int = 1024
    outscale: float = 1.0  # 0 → zero-initialised output layer


@dataclass
class RewardConfig(HeadConfig):
    bins: int = 255  # two-hot bins of the reward prediction
    outscale: float = 0.0


@dataclass
class ActorConfig:
    layers: int = 3
    units: int = 1024
    entropy: float = 3e-4
    minstd: float = 0.1
    maxstd: float = 1.0
    outscale: float = 0.01


@dataclass
class CriticConfig:
    layers: int = 3
    units: int = 1024
    bins: int = 255
    outscale: float = 0.0
    slow_rate: float = 0.02
    slow_reg: float = 1.0


@dataclass
class LossScales:
    rec: float = 1.0
    rew: float = 1.0
    con: float = 1.0
    dyn: float = 1.0
    rep: float = 0.1
    policy: float = 1.0
    value: float = 1.0
    repval: float = 0.3


@dataclass
class RetNormConfig:
    decay: float = 0.99
    perclo: float = 5.0
    perchi: float = 95.0
    limit: float = 1.0


@dataclass
class OptimConfig:
    lr: float = 4e-5
    agc: float = 0.3
    pmin: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-20
    warmup: int = 1000


@dataclass
class AgentConfig:
    rssm: RSSMConfig = field(default_factory=RSSMConfig)
    enc: ObsNetConfig = field(default_factory=ObsNetConfig)
    dec: ObsNetConfig = field(default_factory=ObsNetConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    cont: HeadConfig = field(default_factory=HeadConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    loss: LossScales = field(default_factory=LossScales)
    retnorm: RetNormConfig = field(default_factory=RetNormConfig)
    opt: OptimConfig = field(default_factory=OptimConfig)
    horizon: int = 15
    discount_horizon: float = 333.0  # γ = 1 − 1/333
    lam: float = 0.95
    compile: bool = False  # torch.compile the RSSM's per-step functions and the norms (pays off in long runs)
    precision: str = "auto"  # auto: bf16 autocast where matmuls have bf16 units (CUDA, AVX512-BF16/AMX CPUs); or float32 / bfloat16


@dataclass
class ReplayConfig:
    capacity: int = 5_000_000
    online: bool = True


@dataclass
class RunConfig:
    batch_size: int = 16
    batch_length: int = 64
    train_ratio: float = 256.0  # replayed steps per agent step
    train_start: int = 1024  # replay steps before the first update
    envs: int = 1
    action_repeat: int = 1  # frames per agent step; `step` in logs counts frames
    budget: int = 0  # frames; 0 means no frame budget
    budget_episodes: int = 0  # episodes (bsuite); 0 means none
    log_every: float = 60.0  # seconds
    checkpoint_every: float = 300.0  # seconds
    report_every: float = 300.0  # seconds between open-loop reports (dreamer/inspect); 0: never
    report_length: int = 32  # steps of a report's sequences: the first half observed, the rest imagined
    video_every: int = 0  # record one of every N training episodes of environment 0; 0: never
    wandb: bool = False  # also log to Weights & Biases, offline (the wandb extra)
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # auto (cuda when available), cpu, cuda or cuda:N


@dataclass
class Config:
    size: str = "size200m"
    agent: AgentConfig = field(default_factory=AgentConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    run: RunConfig = field(default_factory=RunConfig)


# Size presets (dreamer/README.md): (deter, hidden, classes, CNN depth, MLP units). Only widths change.
SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "size1m": (512, 64, 4, 4, 64),
    "size12m": (2048, 256, 16, 16, 256),
    "size25m": (3072, 384, 24, 24, 384),
    "size50m": (4096, 512, 32, 32, 512),
    "size100m": (6144, 768, 48, 48, 768),
    "size200m": (8192, 1024, 64, 64, 1024),
    "size400m": (12288, 1536, 96, 96, 1536),
}


# Settings that count something a run needs at least one of.
POSITIVE = ("run.batch_size", "run.batch_length", "run.train_ratio", "run.envs", "run.action_repeat")


# agent.precision: auto resolves per device (dreamer.agent.resolve_precision).
PRECISIONS = ("auto", "float32", "bfloat16")


class ConfigError(ValueError):
    """A bad key or value in an override; the message names the valid choices."""


def apply_size(config: Config, size: str) -> None:
    if size not in SIZES:
        raise ConfigError(f"unknown size {size!r}; valid sizes: {', '.join(SIZES)}")
    deter, hidden, classes, depth, units = SIZES[size]
    a = config.agent
    config.size = size
    a.rssm.deter, a.rssm.hidden, a.rssm.classes = deter, hidden, classes
    a.enc.depth = a.dec.depth = depth
    for module in (a.enc, a.dec, a.reward, a.cont, a.actor, a.critic):
        module.units = units


def make_config(overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The fixed config with `overrides` applied; a `size=...` override is applied first, so
    explicit width overrides win over the preset."""
    config = Config()
    apply_size(config, config.size)
    return override(config, overrides)


def override(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Return a copy of `config` with dotted `key=value` overrides applied and validated."""
    config = from_dict(to_dict(config))
    pairs = [_split(o) for o in overrides]
    for key, value in sorted(pairs, key=lambda kv: kv[0] != "size"):
        if key == "size":
            apply_size(config, _parse(value, str, key))
        else:
            _set(config, key, value)
    return config


def valid_keys(obj: Any = None, prefix: str = "") -> list[str]:
    """Every dotted leaf key of the config."""
    obj = Config() if obj is None else obj
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += valid_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def get(config: Config, key: str) -> Any:
    """The value of dotted `key` (a valid key, e.g. run.envs)."""
    obj = config
    for name in key.split("."):
        obj = getattr(obj, name)
    return obj


def check(config: Config) -> None:
    """Settings that parse but mean nothing a run can do, as a ConfigError naming the valid ones;
    run at plan time, before anything is written."""
    for key in POSITIVE:
        value = get(config, key)
        if value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    r = config.run
    if r.budget <= 0 and r.budget_episodes <= 0:
        raise ConfigError("the run has no budget: set run.budget (frames) or run.budget_episodes")
    need = max(r.train_start, r.envs * (r.batch_length + 1))
    if config.replay.capacity < need:
        raise ConfigError(f"replay.capacity {config.replay.capacity} must hold run.train_start steps and "
                          f"one window per environment ({need} steps)")
    if config.agent.rssm.classes > 256:
        raise ConfigError("replay stores stoch classes as uint8: agent.rssm.classes must be ≤ 256")
    # torch is imported only here, so reading and overriding configs stays light.
    from dreamer.device import check_device

    if config.agent.precision not in PRECISIONS:
        raise ConfigError(f"agent.precision {config.agent.precision!r} is not one of {', '.join(PRECISIONS)}")
    check_device(r.device)
    if r.wandb and importlib.util.find_spec("wandb") is None:
        raise ConfigError("run.wandb=true needs the wandb package: pip install -e '.[wandb]'")


def check_image(shape: tuple[int, ...], config: Config) -> None:
    """An image observation (H, W, C) the encoder and decoder can take: square, its side halved
    once per CNN stage down to a whole number, so the decoder rebuilds the same size."""
    h, w = shape[:2]
    stages = max(len(config.agent.enc.mults), len(config.agent.dec.mults))
    if h != w or h % 2**stages:
        raise ConfigError(f"images of {h}×{w} do not fit the encoder: its {stages} stages need square images "
                          f"with a side divisible by {2**stages}, e.g. 64×64")


# Keys that configs written by earlier versions hold, with the value this version computes as
# (None: any value, the key never changed what a run computed). The CNN's smallest grid follows
# from the image size and `mults`; the continue head has no bins; the discrete policy mixes in no
# uniform share (agent.actor.unimix was 0.01 in November 2026, against the reference's categorical
# policy head). `upgrade` drops a key whose recorded value is that one, so such runs resume and load
# as before; a run that computed otherwise keeps it, and a resume names the difference.
RETIRED_KEYS = {"agent.enc.minres": None, "agent.dec.minres": None, "agent.cont.bins": None,
                "agent.actor.unimix": 0.0}


def upgrade(stored: dict) -> dict:
    """A config dict as a run directory stores it, without the RETIRED_KEYS that mean what this
    version computes."""
    stored = json.loads(json.dumps(stored))
    for key, now in RETIRED_KEYS.items():
        *path, leaf = key.split(".")
        node = stored
        for name in path:
            node = node.get(name, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and leaf in node and now in (None, node[leaf]):
            del node[leaf]
    return stored


# Settings that may change between starts of one run without changing what it computes.
OPERATIONAL_KEYS = ("run.device", "run.log_every", "run.checkpoint_every", "run.report_every",
                    "run.report_length", "run.video_every", "run.wandb", "agent.compile")


def resume_diff(stored: dict, config: Config) -> list[str]:
    """`key: old → new` for every non-operational setting in which `config` differs from the
    config a run was started with (`stored`, as its run directory records it)."""
    old, new = _flatten(upgrade(stored)), _flatten(json.loads(to_json(config)))
    return [f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if k not in OPERATIONAL_KEYS and old.get(k) != new.get(k)]


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def from_dict(data: dict, cls: type = Config) -> Any:
    """Inverse of `to_dict`, also for JSON-loaded dicts (lists become tuples)."""
    kwargs = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(_unknown(key, list(names)))
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            kwargs[key] = from_dict(value, type(default))
        else:
            kwargs[key] = tuple(value) if isinstance(default, tuple) else value
    return cls(**kwargs)


def to_json(config: Config) -> str:
    return json.dumps(to_dict(config), indent=2)


def from_json(text: str) -> Config:
    return from_dict(json.loads(text))


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value (e.g. agent.actor.entropy=1e-3)")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def _unknown(key: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(key, choices, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(near)}?" if near else f"valid keys: {', '.join(choices)}"
    return f"unknown config key {key!r}; {hint}"


def _set(config: Config, key: str, raw: str) -> None:
    if key not in valid_keys(config):
        raise ConfigError(_unknown(key, valid_keys(config)))
    path, _, leaf = key.rpartition(".")
    obj = get(config, path) if path else config
    setattr(obj, leaf, _parse(raw, type(getattr(obj, leaf)), key))


def _parse(raw: str, kind: type, key: str) -> Any:
    if kind is str:
        return raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = {"true": True, "false": False}.get(raw.lower(), raw)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value):
        return int(value)
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    raise ConfigError(f"config key {key!r} expects {kind.__name__}, got {raw!r}")
