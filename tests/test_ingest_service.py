"""The ingest worker's process set-up: its garbage collector tuning."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ingest.service import GC_YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Give the test process its collector settings back."""
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_start_up_objects_and_collects_less_often() -> None:
    """Start-up objects are frozen out of every collection; young collections come every GC_YOUNG_THRESHOLD."""
    tune_gc()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
