"""Marker: ships the named queries inside the llmcp wheel as ``llmcp.sql``."""
