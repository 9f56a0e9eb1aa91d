"""The examples' tests use llmcp's pytest plugin, as a service's own tests would.

``pytest_plugins`` is allowed only in a top-level conftest: this one, for every
example. Async tests run with anyio's pytest plugin (installed with FastAPI).
"""

from __future__ import annotations

pytest_plugins = ["llmcp.testing.plugin"]
