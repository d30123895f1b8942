"""Forecasts of flood levels, traffic and the tide, learnt from stored data only (docs/forecasting.md).

`rollups_1m -> forecast.data (before the origin) -> forecast.features -> forecast.models (LightGBM)
-> forecast.store (forecasts, forecast_models) -> GET /api/v1/forecasts`. Imports only from ``ioc``.
"""
