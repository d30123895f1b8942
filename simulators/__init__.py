"""Simulated field devices of Ho Chi Minh City: physical models, payload encoders, MQTT publishing."""
