"""Deciding: which policy rule answers a SecurityEvent, and recording that decision."""
