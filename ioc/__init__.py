"""ioc: the shared core of the Intelligent Operations Centre (settings, schema, topics, records)."""

__version__ = "0.1.0"
