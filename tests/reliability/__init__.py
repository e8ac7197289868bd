"""Reliability and security suite: every failure is one line, an exit code, intact records."""
