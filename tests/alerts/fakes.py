"""Slack (or any webhook receiver) for the alert tests: the shared scripted HTTP server."""

from tests.http_fakes import Answer, FakeServer, Recorded, fake_server

__all__ = ["Answer", "FakeServer", "Recorded", "fake_server"]
