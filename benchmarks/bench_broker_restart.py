"""`make bench-broker-restart`: issue 11's broker restart, three times. 2,000 msg/s of QoS 1 readings from
250 devices over 4 reconnecting connections; the broker is stopped for 10 s and started again; the database
is compared with every message the broker acknowledged. Prints, per run: sent, acknowledged, lost,
duplicated, stored without an acknowledgement, and how long the ingest took to catch up. Exit code 1 on
any loss or duplicate.

Runs on a private stack (database with fsync on) and the broker `ioc up` would use (ioc's build).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from common import private_stack, progress  # noqa: E402

from tests.restart_load import restart_under_load  # noqa: E402
from tests.support.stack import start_worker  # noqa: E402


def main() -> int:
    """Run the scenario ``--runs`` times on one private stack; one line per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--devices", type=int, default=250)
    parser.add_argument("--down", type=float, default=10, help="seconds the broker stays stopped")
    args = parser.parse_args()
    stack = private_stack("bench-restart", devices=args.devices)
    ids = [f"LOAD-{i:05d}" for i in range(1, args.devices + 1)]
    worker = start_worker(stack, "ioc-ingest-bench")
    failed = False
    try:
        assert stack.postgres is not None and stack.mosquitto is not None
        progress(f"broker {stack.mosquitto.find_binary()}, {args.rate:.0f} msg/s, {args.devices} devices")
        for run in range(1, args.runs + 1):
            stack.postgres.psql("TRUNCATE measurements, latest_values, rollup_dirty, quarantine")
            r = asyncio.run(
                restart_under_load(stack, stack.service_mqtt_url("simulate"), ids, rate=args.rate, down_s=args.down)
            )
            failed |= r.lost > 0 or r.duplicates > 0
            print(
                f"run {run}: sent {r.sent}, acknowledged {r.acked}, lost {r.lost}, duplicated {r.duplicates}, "
                f"stored unacknowledged {r.stored_unacked}, publisher reconnects {r.reconnects}, "
                f"caught up {r.drain_s:.1f} s after the load stopped",
                flush=True,
            )
    finally:
        worker.stop()
        stack.stop()
        if not failed:
            shutil.rmtree(stack.state_dir, ignore_errors=True)
        else:
            progress(f"kept for inspection: {stack.state_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
