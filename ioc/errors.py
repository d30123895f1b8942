"""The small exception tree shared by every ioc package."""

from __future__ import annotations


class IocError(Exception):
    """Base class of every error ioc raises on purpose."""


class ConfigError(IocError):
    """A setting or configuration file is invalid; the message says how to fix it."""


class StackError(IocError):
    """The embedded stack cannot start; the message is one line saying what is wrong and what to do."""


class PayloadError(IocError):
    """A device message cannot be accepted; ``reason`` is a stable code stored in quarantine."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
