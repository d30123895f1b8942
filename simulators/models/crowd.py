"""People in a camera's view: evening and weekend crowds in the centre, few at night."""

from __future__ import annotations

from typing import Any

import numpy as np

from simulators.models.geo import local_hours


def activity(t: Any) -> Any:
    """Relative number of people out, about 0.05 at night to 1.0 on a weekday evening (more at weekends)."""
    hour, weekday = local_hours(t)
    day = 1 / (1 + np.exp(-(hour - 7.0) * 2)) - 1 / (1 + np.exp(-(hour - 23.0) * 2))
    evening = np.exp(-(((hour - 19.5) / 1.8) ** 2))
    boost = np.where(weekday >= 5, 1.5, 1.0)
    return (0.05 + 0.45 * day + 0.5 * evening * boost)[()]


def people(t: Any, base: Any, noise: Any) -> Any:
    """People counted by a camera whose weekday-evening crowd is ``base`` (numbers or arrays)."""
    return np.maximum(0.0, np.rint(base * activity(t) * noise))[()]
