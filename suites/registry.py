"""Name → Suite. Suite modules are imported on demand; none imports its environment library at import time."""
from __future__ import annotations

import importlib

from suites.base import Suite, unknown

_MODULES = {
    "atari100k": "suites.atari100k",
    "dmc_proprio": "suites.dmc",
    "dmc_vision": "suites.dmc",
    "bsuite": "suites.bsuite",
    "minecraft": "suites.minecraft",
}
SUITE_NAMES = tuple(_MODULES)


def get_suite(name: str) -> Suite:
    """The suite called `name`; an unknown name raises SuiteError listing the valid ones."""
    if name not in _MODULES:
        raise unknown("suite", name, SUITE_NAMES)
    return importlib.import_module(_MODULES[name]).SUITES[name]
