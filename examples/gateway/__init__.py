"""A small LLM gateway on llmcp and FastAPI (README: Using llmcp in a FastAPI service)."""
