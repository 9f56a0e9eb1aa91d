"""Example budgets relative to the loaded hypothesis profile.

``@examples(40)`` means 40 examples under the ``default`` profile (100 examples
per test) and ten times as many under ``thorough`` (1000).
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings

REFERENCE = 100  # max_examples of the default profile


def scaled(count: int) -> int:
    """``count`` examples of the default profile, scaled to the loaded one."""
    profile = settings.default
    assert profile is not None, "no hypothesis profile is loaded"
    return max(1, round(count * profile.max_examples / REFERENCE))


def examples(count: int, **overrides: Any) -> settings:
    """Settings for a test that runs ``count`` examples under the default profile."""
    return settings(max_examples=scaled(count), **overrides)
