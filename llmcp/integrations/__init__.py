"""Glue for web frameworks, each module imported only by the services that use it.

``llmcp.integrations.starlette`` (``llmcp[starlette]``): the lifespan that opens
and closes the factory, API keys, llmcp errors as problem details.
``llmcp.integrations.fastapi`` (``llmcp[fastapi]``): the request scope as FastAPI
dependencies. ``llmcp.integrations.problems``: the error-to-HTTP table itself,
framework-free. ``import llmcp`` loads none of them.
"""
