"""What the judge tests share: the scripted OpenAI-shaped server and a test API key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chat_server import FakeChat

KEY = "sk-test-SECRET-0123456789"
"""The API key the tests set: a secret that must never reach a file or a message."""


@pytest.fixture
def fake() -> Iterator[FakeChat]:
    """The scripted OpenAI-shaped server on loopback."""
    server = FakeChat()
    yield server
    server.close()


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """OPENAI_API_KEY set to `KEY`, and TEST_JUDGE_KEY (a key under another name)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TEST_JUDGE_KEY", KEY)
