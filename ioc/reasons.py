"""Quarantine reason codes: the one list of why a device message can be refused.

Stable strings stored in ``quarantine.reason`` and ``quarantine_overflow.reason``, used as the
``reason`` label of ``ioc_ingest_quarantined_total`` and documented in docs/devices.md ("Reason codes";
tests/test_bad_input_table.py checks the table against this list).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a message was quarantined."""

    # The topic
    UNKNOWN_TOPIC = "unknown_topic"
    BAD_DEVICE_ID = "bad_device_id"
    # The registry
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_DISABLED = "device_disabled"
    KIND_MISMATCH = "kind_mismatch"
    DEVICE_MISMATCH = "device_mismatch"
    # The values
    UNKNOWN_METRIC = "unknown_metric"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    TIMESTAMP_OUT_OF_WINDOW = "timestamp_out_of_window"
    # The bytes
    OVERSIZED = "oversized"
    TOO_DEEP = "too_deep"
    DUPLICATE_KEY = "duplicate_key"
    BAD_ENCODING = "bad_encoding"
    BAD_JSON = "bad_json"
    BAD_SCHEMA = "bad_schema"
    BAD_CSV = "bad_csv"
    BAD_SENML = "bad_senml"
    BAD_UNIT = "bad_unit"
    BAD_EVENT = "bad_event"
    BAD_SNAPSHOT = "bad_snapshot"
    BAD_STATUS = "bad_status"
    EMPTY = "empty"
    # The device's behaviour
    RATE_LIMITED = "rate_limited"
    # The ingest itself: a decoder bug, or a row the database refused although validation passed it
    INTERNAL_ERROR = "internal_error"
    DB_REJECTED = "db_rejected"
