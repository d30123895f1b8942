"""ioc ingest: ``broker -> bridge -> decoders -> validation -> writer (COPY) -> TimescaleDB -> NOTIFY``."""
