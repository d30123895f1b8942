"""The domain's default thresholds, shared by the live server (which judges readings) and the simulators.

A device's metadata may override each (``warning_cm``, ``danger_cm``, ``free_flow_kmh``); these apply
when it does not. The live server sends them to browsers (``meta.thresholds``); nothing else copies them.
"""

from __future__ import annotations

DEFAULT_WARNING_CM = 20.0  # flood: water level at which a point is in warning
DEFAULT_DANGER_CM = 30.0  # flood: ... and in danger
DEFAULT_FREE_FLOW_KMH = 50.0  # traffic: the speed of an empty road, against which congestion is measured
# Congestion bands by speed / free-flow speed: ratio >= the first -> 0 free, >= the second -> 1 slow,
# >= the third -> 2 heavy, below -> 3 jammed.
CONGESTION_RATIOS = (0.7, 0.5, 0.3)
# Camera events other than ``info`` this recent count as incidents (the hour's count, the marks on the wall).
INCIDENT_WINDOW_S = 3600
QUIET_SEVERITY = "info"  # the one camera-event severity that is never an incident
# The city's mean speed: below the first km/h it is critical, below the second a warning.
MEAN_SPEED_CRITICAL_KMH = 15.0
MEAN_SPEED_WARNING_KMH = 25.0
