"""Device names a config may give (run.device, dreamer.bench --device): which this torch can
build for, checked when a run is planned, and which exist here, checked when it starts."""
from __future__ import annotations

import torch

from dreamer.config import ConfigError

VALID = "auto, cpu, cuda, cuda:N"


def check_device(name: str, setting: str = "run.device") -> None:
    """A ConfigError, naming the `setting` it came from, unless `name` is a device this torch is
    built for (it need not be present: a cluster's login node plans runs for its GPU nodes)."""
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{setting} {name!r} is not a device; valid: {VALID}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{setting} {name!r} is not supported; valid: {VALID}")
    if device.type == "cuda" and not torch.backends.cuda.is_built():
        raise ConfigError(f"{setting} {name!r}: this torch ({torch.__version__}) is built without CUDA; "
                          "valid here: auto, cpu")


def resolve_device(name: str, setting: str = "run.device") -> torch.device:
    """The torch device `name` stands for on this machine; a ConfigError when it is not here."""
    check_device(name, setting)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ConfigError(f"{setting} {name!r}: this machine has {count} CUDA device(s); valid here: auto, cpu"
                              + "".join(f", cuda:{i}" for i in range(count)))
    return device
