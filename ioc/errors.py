"""The small exception tree shared by every ioc package."""

from __future__ import annotations

from ioc.reasons import Reason


class IocError(Exception):
    """Base class of every error ioc raises on purpose."""


class ConfigError(IocError):
    """A setting or configuration file is invalid; the message says how to fix it."""


class StackError(IocError):
    """The embedded stack cannot start; the message is one line saying what is wrong and what to do."""


class PayloadError(IocError):
    """A device message cannot be accepted; ``reason`` (one of ioc.reasons.Reason) is stored in quarantine."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason = Reason(reason)  # refuses a code that is not in the one list
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else str(self.reason))
