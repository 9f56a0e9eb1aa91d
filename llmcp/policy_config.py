"""The typed ``policies.config`` column: one msgspec struct per policy type.

The union is tagged by ``type`` (the policy type's label), so a stored config
says what it is, and decoding picks the right struct. Constraints are checked
by msgspec on :func:`validate_config`, before anything reaches the table.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

Positive = Annotated[int, msgspec.Meta(gt=0)]
ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


class RateLimitConfig(
    msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True, tag="rate_limit"
):
    """At most ``requests`` requests (and optionally ``tokens`` tokens) per window."""

    requests: Positive
    window_seconds: Positive
    tokens: Positive | None = None


class TokenBudgetConfig(
    msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True, tag="token_budget"
):
    """At most ``max_tokens`` tokens per period."""

    max_tokens: Positive
    period: Literal["hour", "day", "week", "month"] = "month"


class CostBudgetConfig(
    msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True, tag="cost_budget"
):
    """At most ``max_cost`` (in ``currency``) per period; ``alert_at`` is a fraction of it."""

    max_cost: Decimal
    period: Literal["hour", "day", "week", "month"] = "month"
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "USD"
    alert_at: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None

    def __post_init__(self) -> None:
        # msgspec has no bounds for Decimal; a ValueError here becomes its ValidationError
        if not self.max_cost.is_finite() or self.max_cost < 0:
            raise ValueError("max_cost must be a finite, non-negative amount")


class ModelAllowlistConfig(
    msgspec.Struct,
    frozen=True,
    omit_defaults=True,
    forbid_unknown_fields=True,
    tag="model_allowlist",
):
    """Only these models may be called."""

    models: Annotated[list[ModelName], msgspec.Meta(min_length=1, max_length=1000)]


class ContentFilterConfig(
    msgspec.Struct,
    frozen=True,
    omit_defaults=True,
    forbid_unknown_fields=True,
    tag="content_filter",
):
    """Block (or flag) prompts and completions in these categories."""

    categories: Annotated[list[ModelName], msgspec.Meta(min_length=1, max_length=100)]
    action: Literal["block", "flag"] = "block"
    threshold: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5


PolicyConfig = (
    RateLimitConfig
    | TokenBudgetConfig
    | CostBudgetConfig
    | ModelAllowlistConfig
    | ContentFilterConfig
)
"""Any policy config; the ``type`` tag selects the struct."""

CONFIG_BY_TYPE: dict[str, type[PolicyConfig]] = {
    "rate_limit": RateLimitConfig,
    "token_budget": TokenBudgetConfig,
    "cost_budget": CostBudgetConfig,
    "model_allowlist": ModelAllowlistConfig,
    "content_filter": ContentFilterConfig,
}
