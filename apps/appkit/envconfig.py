"""Reading an app's settings from its environment: one error that names the variable, and numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping


class ConfigError(ValueError):
    """A setting from the environment is not usable; the message names the variable."""


def number(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    """Read a number of at least `minimum` from `env` (`default` when unset or empty), naming the variable
    when it is not one."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise ConfigError(f"{name} must be a number, not {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must not be negative" if minimum == 0 else f"{name} must be at least {minimum:g}")
    return value
