"""``python -m simulators``: the same as ``ioc simulate``, for use without the ioc CLI."""

from __future__ import annotations

import argparse
import logging
import sys

from ioc.settings import get_settings
from simulators.cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the simulator."""
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m simulators", description="Simulated HCMC field devices")
    add_arguments(parser)
    return run(parser.parse_args(argv), settings)


if __name__ == "__main__":
    sys.exit(main())
