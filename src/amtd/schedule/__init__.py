"""Scheduled work: the timer's time-based SecurityEvents and the sweep that finishes stuck ones."""
