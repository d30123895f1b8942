"""ioc.settings without a stack: the URL settings take only their own schemes, and say which."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ioc.settings import Settings


@pytest.mark.parametrize(
    ("field", "good", "bad", "said"),
    [
        (
            "database_url",
            "postgresql+asyncpg://u@h/db",
            "mysql://u@h/db",
            "IOC_DATABASE_URL must start with postgresql://",
        ),
        ("open_database_url", "postgres://u@h/db", "postgresql+asyncpg://u@h/db", "IOC_OPEN_DATABASE_URL must start"),
        ("mqtt_url", "mqtts://h:8883", "http://h", "IOC_MQTT_URL must start with mqtt:// or mqtts://"),
        ("open_mqtt_url", "tcp://h:1883", "mqtts://h:8883", "IOC_OPEN_MQTT_URL must start with mqtt://"),
    ],
)
def test_url_settings_take_their_schemes(field: str, good: str, bad: str, said: str) -> None:
    assert getattr(Settings(**{field: good}), field) == good
    assert getattr(Settings(**{field: ""}), field) == ""  # unset
    with pytest.raises(ValidationError, match=said):
        Settings(**{field: bad})

