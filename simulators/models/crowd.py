"""People in a camera's view: evening and weekend crowds in the centre, few at night."""

from __future__ import annotations

import math

from simulators.models.geo import local_hours


def activity(t: float) -> float:
    """Relative number of people out, about 0.05 at night to 1.0 on a weekday evening (more at weekends)."""
    hour, weekday = local_hours(t)
    day = 1 / (1 + math.exp(-(hour - 7.0) * 2)) - 1 / (1 + math.exp(-(hour - 23.0) * 2))
    evening = math.exp(-(((hour - 19.5) / 1.8) ** 2))
    boost = 1.5 if weekday >= 5 else 1.0
    return 0.05 + 0.45 * day + 0.5 * evening * boost


def people(t: float, base: float, noise: float) -> int:
    """People counted by a camera whose weekday-evening crowd is ``base``."""
    return max(0, round(base * activity(t) * noise))
