"""Open data: the public, read-only SensorThings API 1.1 over the ioc tables (see docs/open-data.md)."""
