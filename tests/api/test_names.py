"""Username and email normalisation: properties over arbitrary text."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from kitch.auth.names import RESERVED_USERNAMES, normalise_email, normalise_username


@given(st.text(max_size=40))
def test_accepted_usernames_are_plain_ascii(raw: str) -> None:
    name, problem = normalise_username(raw)
    if name is None:
        assert problem
    else:
        assert re.fullmatch(r"[a-z0-9_]{3,25}", name)
        assert name == raw.lower() and raw.isascii()
        assert name not in RESERVED_USERNAMES


@given(st.text(max_size=300))
def test_emails_never_crash(raw: str) -> None:
    email, problem = normalise_email(raw)
    assert (email is None) != (problem is None)
    if email is not None:
        assert email.count("@") == 1 and len(email) <= 254
