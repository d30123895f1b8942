"""The naive baseline a competent person would write: paho-mqtt, an asyncpg pool of 10, one INSERT per message.

Subscribes at QoS 1 (paho acknowledges each message on arrival), hands every message from paho's thread
to an asyncio loop, and inserts its readings with one autocommitted multi-row INSERT on a pooled
connection, at most 10 at a time. `bench_ingest.py --compare` runs it beside ioc on the same load.
Usage: naive_ingest.py MQTT_URL DATABASE_URL
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

POOL = 10
INSERT = (
    "INSERT INTO measurements (time, device_id, metric, value, seq) "
    "SELECT $1, $2, m, v, $5 FROM unnest($3::text[], $4::float8[]) AS t(m, v) ON CONFLICT DO NOTHING"
)


async def main() -> None:
    """Subscribe and insert each message with its own statement until SIGTERM."""
    broker, url = urlsplit(sys.argv[1]), sys.argv[2]
    loop = asyncio.get_running_loop()
    pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)
    slots = asyncio.Semaphore(POOL)
    tasks: set[asyncio.Task[None]] = set()

    async def store(topic: str, payload: bytes) -> None:
        async with slots:
            doc = json.loads(payload)
            ts = doc["ts"]
            ts = datetime.fromisoformat(ts) if isinstance(ts, str) else datetime.fromtimestamp(ts, UTC)
            metrics = doc["metrics"]
            await pool.execute(INSERT, ts, topic.split("/")[3], list(metrics), list(metrics.values()), doc.get("seq"))

    def spawn(topic: str, payload: bytes) -> None:
        task = loop.create_task(store(topic, payload))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        loop.call_soon_threadsafe(spawn, msg.topic, msg.payload)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive", protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, u, f, r, p: c.subscribe("ioc/v1/+/+/telemetry", qos=1)
    client.on_message = on_message
    client.username_pw_set(unquote(broker.username or ""), unquote(broker.password or ""))
    client.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
    client.loop_start()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    client.loop_stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
