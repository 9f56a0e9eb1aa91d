"""API keys are stored only as their SHA-256 digest, in lowercase hex."""

from __future__ import annotations

import hashlib
import re

API_KEY_HASH = re.compile(r"^[0-9a-f]{64}$")
"""What ``applications.api_key_hash`` accepts: 64 lowercase hex digits."""


def hash_api_key(key: str) -> str:
    """The ``api_key_hash`` of ``key`` (SHA-256 of its UTF-8 bytes, lowercase hex):
    what ``NewApplication`` stores and ``get_by_api_key_hash`` looks up."""
    return hashlib.sha256(key.encode()).hexdigest()
