"""A plain paho-mqtt QoS 1 publisher of pre-generated canonical telemetry (one process, one connection).

Builds all its messages first, prints ``ready``, waits for a line on stdin, publishes them as fast as the
broker takes them (at most 1,000 in flight), waits for every PUBACK and prints ``{"acked": n}``.
`bench_ingest.py --compare` starts several of these so the publisher is not the limit.
Usage: paho_publish.py MQTT_URL CLIENT_ID FIRST_DEVICE DEVICES COUNT
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

INFLIGHT = 1000


def messages(first: int, devices: int, count: int) -> list[tuple[str, bytes]]:
    """``count`` readings round-robin over devices LOAD-{first}.., each with a distinct, current timestamp."""
    now = time.time()
    out = []
    for i in range(count):
        d = first + i % devices
        ts = datetime.fromtimestamp(now + i * 1e-6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        payload = (
            f'{{"ts":"{ts}","seq":{i // devices + 1},"metrics":{{"water_level_cm":{i % 150 / 10:.1f},'
            f'"rainfall_mm_h":{i % 50 / 10:.1f},"battery_pct":{60 + i % 40}.0}}}}'
        )
        out.append((f"ioc/v1/flood/LOAD-{d:05d}/telemetry", payload.encode()))
    return out


def main() -> None:
    """Publish and report."""
    url, client_id, first, devices, count = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    todo = messages(first, devices, count)
    broker = urlsplit(url)
    acked = 0
    done = threading.Event()

    def on_publish(client: mqtt.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        nonlocal acked
        acked += 1
        if acked == count:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(unquote(broker.username or ""), unquote(broker.password or ""))
    client.max_inflight_messages_set(INFLIGHT)
    client.on_publish = on_publish
    client.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
    client.loop_start()
    print("ready", flush=True)
    sys.stdin.readline()
    for topic, payload in todo:
        client.publish(topic, payload, qos=1)
    done.wait(600)
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"acked": acked}), flush=True)


if __name__ == "__main__":
    main()
