"""Named variants: config overrides (and environment protocol overrides) on top of a suite's runs.

`dreamerv3` is the fixed config itself. A variant's name is the `{variant}` directory of its runs
and the method name in reports.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from suites.atari100k import PROTOCOLS as ATARI_PROTOCOLS
from suites.base import SuiteError, unknown


@dataclass(frozen=True)
class Variant:
    """`config`: dotted overrides for every suite; `per_suite`: extra overrides for one suite;
    `protocol`: environment knob overrides; `suites`: the suites it applies to (empty = all)."""

    name: str
    description: str
    config: tuple[str, ...] = ()
    per_suite: dict[str, tuple[str, ...]] = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)
    suites: tuple[str, ...] = ()

    def overrides(self, suite: str) -> tuple[list[str], dict]:
        """(config overrides, protocol overrides) of this variant for `suite`."""
        if self.suites and suite not in self.suites:
            raise SuiteError(f"variant {self.name!r} applies to {', '.join(self.suites)}, not {suite!r}")
        return [*self.config, *self.per_suite.get(suite, ())], dict(self.protocol)


VARIANTS = {v.name: v for v in (
    Variant("dreamerv3", "the fixed DreamerV3 config with the suite's settings"),
    # The 2024-12 reference code runs DMC at action repeat 1, and proprio at size1m (suites/README.md).
    Variant("dmc2412", "2024-12 DMC settings: action repeat 1; size1m for dmc_proprio",
            config=("run.action_repeat=1",), per_suite={"dmc_proprio": ("size=size1m",)},
            suites=("dmc_proprio", "dmc_vision")),
    # The general Atari protocol (sticky actions 0.25, full action set) on the Atari 100k games.
    Variant("atari", "Atari protocol with sticky actions 0.25 and the full action set",
            protocol={k: v for k, v in ATARI_PROTOCOLS["atari"].items()
                      if v != ATARI_PROTOCOLS["atari100k"][k]},
            suites=("atari100k",)),
    # S = max(1, P95 − P5); equal percentiles make the range exactly 0, so S ≡ 1: advantages
    # reach the actor unnormalised.
    Variant("no_retnorm", "ablation: no return normalisation (return scale fixed at 1)",
            config=("agent.retnorm.perclo=50", "agent.retnorm.perchi=50")),
    # The CPU learning checks (README "Does it learn?"): the fixed config with only the size
    # lowered to size1m and the train ratio of the reference's bsuite preset (1024, one update per
    # agent step) or of the published DMC runs (512); compiled RSSM steps compute the same losses,
    # faster.
    Variant("cpu_learn", "CPU learning check: size1m at train ratio 1024 (bsuite preset) or 512 (published DMC runs)",
            per_suite={"bsuite": ("size=size1m", "run.train_ratio=1024", "agent.compile=true"),
                       "dmc_proprio": ("size=size1m", "run.train_ratio=512", "agent.compile=true")},
            suites=("bsuite", "dmc_proprio")),
    # The second CPU check: bsuite cartpole at the train ratio the reference's 2023 config noted
    # for it (128), so an hour buys tens of thousands of frames of 1,000-step episodes.
    Variant("cpu_cartpole", "CPU learning check on bsuite cartpole: size1m at train ratio 128",
            per_suite={"bsuite": ("size=size1m", "run.train_ratio=128", "agent.compile=true")},
            suites=("bsuite",)),
    # The CPU learning check on the main job's path: an Atari 100k game at size1m, everything else
    # the suite's (train ratio 256, action repeat 4, the atari100k protocol), compiled.
    Variant("cpu_atari", "CPU learning check on Atari 100k: size1m, everything else the suite's",
            per_suite={"atari100k": ("size=size1m", "agent.compile=true")}, suites=("atari100k",)),
    Variant("no_repval", "ablation: no replay-value loss (scale 0 instead of 0.3)",
            config=("agent.loss.repval=0",)),
)}


def get_variant(name: str) -> Variant:
    """The variant called `name`; an unknown name raises SuiteError listing the valid ones."""
    if name not in VARIANTS:
        raise unknown("variant", name, VARIANTS)
    return VARIANTS[name]
