"""The judge response cache, shared by every run on this machine.

A reply is stored under a key that hashes everything that could change it: the judge's
identity (endpoint and model for a chat judge; checkpoint, engine and dtype for a local
one) and the whole question (messages, seed, temperature, top_p, token budget, stop
strings). Rescoring a checkpoint, calibrating one judge for five checkpoints or
rebuilding a report then never pays twice for the same call, and a run killed mid-batch
resumes from the replies that had already arrived (each is written when it arrives).

Layout: `<cache>/judge/<key[:2]>/<key>.json` ($FAITHCHECK_JUDGE_CACHE moves it), one
file per reply, each written atomically; a damaged file is ignored (and replaced on the
next call), never trusted.
Greedy replies of hosted APIs are not bit-reproducible; the cache makes a rescore
reproducible anyway. `--no-judge-cache` opts out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from faithcheck.judge.client import Ask, JudgeReply
from faithcheck.judge.probs import LabelAsk
from faithcheck.store.jsonio import atomic_write_bytes, dumps

CACHE_VERSION = 1
"""Bump when the key or the stored reply changes meaning."""


class ResponseCache:
    """Judge replies on disk, keyed by judge identity and question."""

    def __init__(self, root: Path) -> None:
        self.root = root
        """The cache folder (`<cache_root>/judge`)."""

    def key(self, identity: str | None, ask: Ask) -> str:
        """The key of one question to one judge (a probability read-out is keyed apart
        from every text question)."""
        doc = {"v": CACHE_VERSION, "judge": identity, "ask": ask.model_dump(mode="json")}
        if isinstance(ask, LabelAsk):
            doc["kind"] = "labels"
        return hashlib.sha256(dumps(doc)).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> JudgeReply | None:
        """The stored reply, or None (absent or damaged)."""
        try:
            return JudgeReply.model_validate(orjson.loads(self._path(key).read_bytes()))
        except (OSError, ValueError):
            return None

    def put(self, key: str, reply: JudgeReply) -> None:
        """Store a reply (a cache that cannot be written only costs money and time)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, dumps(reply.model_copy(update={"cached": False})))
        except OSError:
            pass


def default_cache() -> ResponseCache:
    """$FAITHCHECK_JUDGE_CACHE, else `judge/` under faithcheck's cache folder."""
    import os

    from faithcheck.models import cache_root

    env = os.environ.get("FAITHCHECK_JUDGE_CACHE")
    return ResponseCache(Path(env) if env else cache_root() / "judge")
