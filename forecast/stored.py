"""The learned models as stored in ``forecast_models``: compressed JSON with LightGBM's own text format inside.

No pickle: a stored model is data, read back only by ``load_model`` of the same ``FORMAT`` and features.
"""

from __future__ import annotations

import base64
import json
import logging
import zlib
from datetime import datetime
from typing import Any

import numpy as np

from forecast.features import FLOOD_FEATURES, TRAFFIC_FEATURES
from forecast.models import FORMAT, FloodModel, TrafficModel, load_lightgbm

logger = logging.getLogger(__name__)


def _pack(doc: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def _array(a: np.ndarray) -> dict[str, Any]:
    return {"shape": list(a.shape), "data": base64.b64encode(a.astype("<f8").tobytes()).decode()}


def _unarray(doc: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(doc["data"]), dtype="<f8").reshape(doc["shape"]).copy()


def dump_flood(model: FloodModel) -> bytes:
    """The model as compressed JSON (LightGBM's own text format inside)."""
    return _pack(
        {
            "format": FORMAT,
            "kind": "flood",
            "features": list(FLOOD_FEATURES),
            "boosters": {str(h): b.model_to_string() for h, b in model.boosters.items()},
            "bands": {str(h): [list(q) for q in qs] for h, qs in model.bands.items()},
            "trained_until": model.trained_until.isoformat(),
            "tide": model.tide,
            "traits": model.traits,
        }
    )


def dump_traffic(model: TrafficModel) -> bytes:
    """The model as compressed JSON."""
    return _pack(
        {
            "format": FORMAT,
            "kind": "traffic",
            "features": list(TRAFFIC_FEATURES),
            "boosters": {f"{m}:{h}": b.model_to_string() for (m, h), b in model.boosters.items()},
            "bands": {f"{m}:{h}": list(v) for (m, h), v in model.bands.items()},
            "tables": {d: {m: _array(t) for m, t in by.items()} for d, by in model.tables.items()},
            "trained_until": model.trained_until.isoformat(),
        }
    )


def load_model(blob: bytes) -> FloodModel | TrafficModel:
    """A model from ``dump_flood``/``dump_traffic`` output; ValueError when it is of another format."""
    lgb = load_lightgbm()
    doc = json.loads(zlib.decompress(blob))
    until = datetime.fromisoformat(doc["trained_until"])
    if doc.get("format") != FORMAT:
        raise ValueError(f"stored model format {doc.get('format')!r}, this version reads {FORMAT}")
    if doc["kind"] == "flood":
        if doc["features"] != list(FLOOD_FEATURES):
            raise ValueError("stored flood model has other features: retrain")
        boosters = {int(h): lgb.Booster(model_str=s) for h, s in doc["boosters"].items()}
        bands = {int(h): [(float(q[0]), float(q[1])) for q in qs] for h, qs in doc["bands"].items()}
        traits = {d: [float(v) for v in t] for d, t in doc["traits"].items()}
        return FloodModel(boosters, bands, until, tide=doc.get("tide"), traits=traits)
    if doc["features"] != list(TRAFFIC_FEATURES):
        raise ValueError("stored traffic model has other features: retrain")
    keyed = {}
    for key, s in doc["boosters"].items():
        metric, h = key.rsplit(":", 1)
        keyed[(metric, int(h))] = lgb.Booster(model_str=s)
    spans: dict[tuple[str, int], tuple[float, float]] = {}
    for key, v in doc["bands"].items():
        metric, h = key.rsplit(":", 1)
        spans[(metric, int(h))] = (float(v[0]), float(v[1]))
    tables = {d: {m: _unarray(t) for m, t in by.items()} for d, by in doc["tables"].items()}
    return TrafficModel(keyed, spans, tables, until)
