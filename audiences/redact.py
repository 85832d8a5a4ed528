"""Keep personal data out of logs and run metadata."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")


def mask_emails(text: str) -> str:
    """``jane.doe@example.com`` -> ``j***@example.com``."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
