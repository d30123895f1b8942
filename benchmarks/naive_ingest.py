"""The naive baseline: paho-mqtt with automatic acks and one INSERT (autocommit) per message.

This is the script many projects start with; `bench_ingest.py` runs it beside ioc's ingest.
Usage: naive_ingest.py MQTT_URL DATABASE_URL
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
import psycopg2
from paho.mqtt.enums import CallbackAPIVersion


def main() -> None:
    """Subscribe and insert each reading with its own statement."""
    broker, url = urlsplit(sys.argv[1]), sys.argv[2]
    db = psycopg2.connect(url)
    db.autocommit = True
    cur = db.cursor()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[3]
        doc = json.loads(msg.payload)
        ts = datetime.fromtimestamp(doc["ts"], UTC) if isinstance(doc["ts"], (int, float)) else doc["ts"]
        for metric, value in doc["metrics"].items():
            cur.execute(
                "INSERT INTO measurements (time, device_id, metric, value, seq) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (ts, device, metric, value, doc.get("seq")),
            )

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive", protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, u, f, r, p: c.subscribe("ioc/v1/+/+/telemetry", qos=1)
    client.on_message = on_message
    client.username_pw_set(unquote(broker.username or ""), unquote(broker.password or ""))
    client.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
    client.loop_forever()


if __name__ == "__main__":
    main()
