"""Incidents: alerts grouped into one thing to act on, followed through a procedure to closed."""
