"""Ingest: a security tool's alert read (one module per tool) and turned into a SecurityEvent."""
