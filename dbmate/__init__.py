"""Marker: ships the dbmate migrations and schema dump inside the llmcp wheel as ``llmcp.dbmate``."""
