"""Which plans PostgreSQL may use while a property runs.

A listing whose ORDER BY lost its tie-breaker still comes back in the right
order when PostgreSQL reads it through an index sorted like the listing
(``created_at DESC, id DESC``): the bug hides behind the plan. Properties draw
the planner mode per example: ``"indexes"`` (as in production) or ``"sorts"``,
where index scans are off for the rest of the transaction, so the rows come in
the order the ORDER BY itself produces.
"""

from __future__ import annotations

from hypothesis import strategies as st

from llmcp.transactions import Transaction

MODES = st.sampled_from(["indexes", "sorts"])


def use(transaction: Transaction, mode: str) -> None:
    """Apply ``mode`` to the rest of ``transaction`` (``SET LOCAL``)."""
    if mode != "sorts":
        return
    for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
        transaction.connection.execute(f"SET LOCAL {setting} = off")
    # prepared statements may hold a generic plan made with indexes: plan every execution
    transaction.connection.execute("SET LOCAL plan_cache_mode = force_custom_plan")
