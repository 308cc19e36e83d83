"""Every one-line user error of blazeasgi derives from BlazeasgiError."""

from __future__ import annotations

import pytest

from blazeasgi.cli import AppLoadError
from blazeasgi.engine.server import StartupFailed
from blazeasgi.envconfig import EnvFileError
from blazeasgi.errors import BlazeasgiError
from blazeasgi.logs import LogConfigError
from blazeasgi.processflags import UsageError
from blazeasgi.reload import ReloadUnavailable
from blazeasgi.sockets import ListenError
from blazeasgi.tls import TLSConfigError


@pytest.mark.parametrize(
    "cls",
    [
        AppLoadError,
        UsageError,
        ListenError,
        TLSConfigError,
        EnvFileError,
        LogConfigError,
        ReloadUnavailable,
        StartupFailed,
    ],
)
def test_one_base(cls: type[Exception]) -> None:
    assert issubclass(cls, BlazeasgiError)
    error = cls("one line")
    assert str(error) == "one line"
    assert error.details == ""  # type: ignore[attr-defined]


def test_listen_error_stays_an_os_error() -> None:
    with pytest.raises(OSError, match="port in use"):
        raise ListenError("port in use")
