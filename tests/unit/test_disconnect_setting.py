"""The disconnect settings: yes/no values, and a clear error for anything else."""

from __future__ import annotations

import pytest

from orchestration.settings import env_flag

CASES = [
    ("", False),
    ("false", False),
    ("0", False),
    ("No", False),
    ("true", True),
    ("TRUE", True),
    (" 1 ", True),
    ("yes", True),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_env_flag_reads_yes_and_no(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("MAILCHIMP_DISCONNECTED", value)
    assert env_flag("MAILCHIMP_DISCONNECTED") is expected


def test_env_flag_is_off_when_unset_and_refuses_other_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUSTOMERIO_DISCONNECTED", raising=False)
    assert env_flag("CUSTOMERIO_DISCONNECTED") is False
    monkeypatch.setenv("CUSTOMERIO_DISCONNECTED", "disconnect")
    with pytest.raises(ValueError, match="CUSTOMERIO_DISCONNECTED must be true or false, not 'disconnect'"):
        env_flag("CUSTOMERIO_DISCONNECTED")
