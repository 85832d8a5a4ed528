"""Keep personal data and secrets out of logs, run metadata and exceptions."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

# Any address: the local part and the domain may be non-ASCII (zoë@bücher.de), so "not a separator" rather
# than a list of allowed characters; the top-level label has two characters or more and no dot. An apostrophe
# belongs to a local part (o'neil@x.io) but cannot start one, nor be in a domain: a quoted address
# ('jane@example.com', as error messages print ids) is masked inside its quotes.
_SEP = r"\s@<>()\[\],;:=\"|`"
_EMAIL = re.compile(rf"([^{_SEP}'])[^{_SEP}]*@([^{_SEP}']+\.[^{_SEP}'.]{{2,}})")


def mask_emails(text: str) -> str:
    """``jane.doe@example.com`` -> ``j***@example.com``."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret, and the ``Basic`` credential built from a ``user:secret`` pair, replaced by
    ``***``: for error bodies and messages that may echo what a request carried."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def basic_credentials(user: str, password: str) -> list[str]:
    """The secrets a basic-auth request carries: the password, and the header's base64 form of both."""
    return [password, base64.b64encode(f"{user}:{password}".encode()).decode()]
