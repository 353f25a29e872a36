"""Helpers shared by the tests: functions in-process and as real processes, CloudEvents."""
