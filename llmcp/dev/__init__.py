"""The tooling: code generation, the catalog, seed data, the demo, the embedded
server and throwaway databases, the sync-twin derivation.

Needs ``llmcp[dev]``. Nothing of the runtime (``llmcp``) imports it.
"""
