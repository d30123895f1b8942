"""Test and benchmark support, kept out of the product packages.

- ``stack``: the test broker's address and helpers that publish to it and poll the database.
- ``live``: logging in over HTTP and websocket clients of the live server.
- ``chromium``: Debian's Chromium binary and flags (tests and the wall soak benchmark).
- ``decoding`` and ``vendor_cases``: the decoder cases of tests/test_decoders.py (topic, payload, kind, records),
  one table per family of wire formats.
- ``auth`` and ``browser``: fixtures, loaded for every test by ``pytest_plugins`` in tests/conftest.py.
"""
