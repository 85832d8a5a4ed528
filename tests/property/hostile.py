"""Generated hostile profiles for the payload path, and what each destination must end up holding for them.

The profiles are shaped like ``marts.customer_profiles`` rows (staged with ``stage_profiles``), with the data the
marts can carry when Stripe holds odd input: Unicode and IDN addresses, padding, case variants and duplicates,
missing and huge metadata, odd currencies, nulls, long names, values past the destinations' limits. Each profile
says whether it is *clean* (a well-formed record that must be accepted) or hostile (accepted with the right
content, or rejected with a reason).
"""

from __future__ import annotations

import datetime as dt
import re
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from audiences.field_mapping import FieldMapping, MergeField
from audiences.profiles import Profile

PAYLOADS = settings(
    max_examples=25,  # two tests of 25 small batches: under a minute on a busy machine
    deadline=None,  # each example runs a sync over HTTP: timing varies with the machine's load
    derandomize=True,  # the same examples on every run and in CI: a failure is reproducible by rerunning
    database=None,  # nothing to replay: derandomized runs find the same examples again
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)

MAPPING = FieldMapping(
    merge_fields=(
        MergeField("currency", "CURRENCY", "Currency", "text"),
        MergeField("lifetime_spend", "LTV", "Lifetime spend", "number"),
        MergeField("purchase_count", "PURCHASES", "Purchase count", "number"),
        MergeField("last_purchase_at", "LASTPURCH", "Last purchase", "date"),
        MergeField("name", "NAME", "Name", "text"),
    ),
    customerio_attributes={
        "name": "name",
        "currency": "currency",
        "lifetime_spend": "lifetime_spend",
        "purchase_count": "purchase_count",
        "last_purchase_at": "last_purchase_at",
        "marketing_consent": "marketing_consent",
        "metadata": "metadata",
    },
)
TEXT_MAX = 255  # Mailchimp text merge fields
VALUE_MAX = 1000  # Customer.io attribute values, in bytes
_MART_VALID = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+", re.ASCII)  # the mart's has_valid_email (RE2: ASCII \s)

# -- emails ----------------------------------------------------------------------------------------------
_LOCAL = st.text(string.ascii_lowercase + string.digits + "._+-", min_size=1, max_size=20).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum() and ".." not in s
)
_DOMAIN = st.sampled_from(["gmail.com", "outlook.com", "yahoo.co.uk", "mail.example-shop.io", "web.de"])
CLEAN_EMAIL = st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN).filter(
    lambda e: e.split("@")[0] not in {"test", "fake", "null", "sample", "example", "asdf", "qwerty", "noemail"}
)
_UNICODE_LOCAL = st.sampled_from(["zoë", "ÉLODIE", "İstanbul", "straße", "用户", "Ǆemal", "ﬁle"])
_IDN_DOMAIN = st.sampled_from(["bücher.de", "örnek.com.tr", "例子.广告", "xn--bcher-kva.de", "ΠΑΡΆΔΕΙΓΜΑ.ΔΟΚΙΜΉ"])
_PADDING = st.sampled_from([" ", "  ", "\t", "\u00a0", "\u2003", "\n", " \t"])
HOSTILE_EMAIL = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "\t", "not-an-email", "a@b", "@gmail.com", "a@@gmail.com", "a b@gmail.com"]),
    st.sampled_from(["test@example.com", "fake@gmail.com", "someone@mailinator.com"]),  # fake-looking
    st.builds(lambda local, domain: f"{local}@{domain}", _UNICODE_LOCAL, _DOMAIN),
    st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _IDN_DOMAIN),
    st.builds(lambda pad, email, pad2: pad + email + pad2, _PADDING, CLEAN_EMAIL, _PADDING),
    st.builds(lambda email: email.upper(), CLEAN_EMAIL),
    st.builds(lambda n: "a" * n + "@gmail.com", st.sampled_from([70, 150, 260, 1000])),  # past every limit
    st.text(max_size=30),
)

# -- values ----------------------------------------------------------------------------------------------
_TAGS = ["spend:low", "spend:high", "rfm:champions", "lifecycle:at_risk", "cohort:2026-03"]
HOSTILE_TAGS = [*_TAGS, "région:île-de-france", "vip 🎉", "t" * 101]  # the last one is past Mailchimp's 100
CLEAN_CURRENCY = st.sampled_from(["usd", "eur", "jpy", "bhd", "xof", "clp"])
HOSTILE_CURRENCY = st.one_of(st.none(), CLEAN_CURRENCY, st.sampled_from(["", "USD", "zzz", "usdt", "€", "x" * 300]))
CLEAN_SPEND = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)
HOSTILE_SPEND = st.one_of(
    st.none(), st.decimals(min_value=-(10**15), max_value=10**15, places=2, allow_nan=False, allow_infinity=False)
)
CLEAN_COUNT = st.integers(min_value=0, max_value=10_000)
HOSTILE_COUNT = st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62))
_WHEN = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC))
CLEAN_WHEN = st.datetimes(
    min_value=dt.datetime(2015, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)
)
HOSTILE_WHEN = st.one_of(st.none(), _WHEN)
CLEAN_NAME = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=60)
HOSTILE_NAME = st.one_of(
    st.none(),
    st.text(max_size=300),  # control characters, lone surrogates are excluded by the utf-8 codec below
    st.text(st.characters(codec="utf-8"), min_size=250, max_size=1200),  # long names, past both limits
    st.builds(lambda n: "é" * n, st.sampled_from([255, 256, 500, 501])),  # 2 bytes a character
)
CLEAN_METADATA = st.one_of(st.none(), st.just(""), st.text(string.printable, max_size=200))
HOSTILE_METADATA = st.one_of(
    st.none(),
    st.just("{}"),
    st.builds(lambda n: '{"note":"' + "x" * n + '"}', st.sampled_from([980, 990, 991, 2000])),  # huge
    st.text(st.characters(codec="utf-8"), max_size=600),
)


@dataclass
class Case:
    """A batch of profiles and which of them are clean."""

    profiles: list[Profile]
    clean: set[str]

    def by_id(self) -> dict[str, Profile]:
        return {p.customer_id: p for p in self.profiles}


def _no_surrogates(text: str | None) -> str | None:
    """Lone surrogates cannot be UTF-8 (and never come out of Stripe's JSON): dropped from generated text."""
    return None if text is None else text.encode("utf-8", "replace").decode("utf-8")


@st.composite
def _profile(draw: st.DrawFn, index: int, clean: bool, emails_so_far: list[str]) -> Profile:
    cid = f"cus_{index:04d}" + ("" if clean else draw(st.sampled_from([""] * 5 + ["x" * 150])))  # past 150 bytes
    if clean:
        local, domain = draw(CLEAN_EMAIL).split("@")
        email: str | None = f"{local}.{index}@{domain}"  # unique in the batch
    elif emails_so_far and draw(st.sampled_from([False, False, True])):  # an earlier one, in another case or padded
        base = draw(st.sampled_from(emails_so_far))
        email = draw(st.sampled_from([base, base.upper(), base.title(), f" {base}", f"{base}\t", f"\u00a0{base}"]))
    else:
        email = _no_surrogates(draw(HOSTILE_EMAIL))
    if email is not None:
        emails_so_far.append(email.strip().lower())
    verdict = email is not None and bool(_MART_VALID.fullmatch(email.strip().lower()))

    def value(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
        return draw(good if clean else st.one_of(good, bad))  # a hostile profile: each value clean or hostile

    fields: dict[str, Any] = {
        "customer_id": cid,
        "email": email,
        "has_valid_email": True if clean else draw(st.sampled_from([verdict, verdict, verdict, True, None])),
        "name": _no_surrogates(value(CLEAN_NAME, HOSTILE_NAME)),
        "currency": value(CLEAN_CURRENCY, HOSTILE_CURRENCY),
        "lifetime_spend": value(CLEAN_SPEND, HOSTILE_SPEND),
        "purchase_count": value(CLEAN_COUNT, HOSTILE_COUNT),
        "last_purchase_at": value(CLEAN_WHEN, HOSTILE_WHEN),
        "marketing_consent": value(st.booleans(), st.none()),
        "metadata": _no_surrogates(value(CLEAN_METADATA, HOSTILE_METADATA)),
    }
    tags = value(
        st.lists(st.sampled_from(_TAGS), max_size=4, unique=True),
        st.lists(st.sampled_from(HOSTILE_TAGS), max_size=4, unique=True),
    )
    return Profile(cid, fields, tags)


@st.composite
def cases(draw: st.DrawFn, max_size: int = 14) -> Case:
    """A small batch: at least one clean profile (the batch must carry on for it) and hostile ones."""
    kinds = draw(st.lists(st.booleans(), min_size=4, max_size=max_size))
    kinds[0] = True
    emails: list[str] = []
    profiles = [draw(_profile(i, clean, emails)) for i, clean in enumerate(kinds)]
    return Case(profiles, {p.customer_id for p, clean in zip(profiles, kinds, strict=True) if clean})


def zero_if_none(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal(0)
