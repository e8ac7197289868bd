"""Problem loading: local JSONL / JSON / Parquet files, hub datasets, reasoning-gym.

Dataset specs:

- a path ending in `.jsonl`, `.json` or `.parquet`
- `hf:org/name[:config]:split`   (a Hugging Face dataset; needs the hub or its cache)
- `rg:generator?size=32&seed=0`  (a reasoning-gym generator, offline)

JSON and JSONL are parsed here rather than through `datasets`, so that a malformed line
is reported with its line number and values keep their JSON types; Parquet and hub
datasets go through `datasets`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from faithcheck.errors import DataError
from faithcheck.records import Problem

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "data" / "samples"
BUNDLED = {"math", "science", "graph"}
DEFAULT_DATASET = "math"


@dataclass(frozen=True)
class FieldMap:
    """Which source fields hold the problem fields (`--id-field` and friends)."""

    id: str = "id"
    question: str = "question"
    answer: str = "answer"
    domain: str = "domain"


def resolve_bundled(spec: str) -> str:
    """Bundled sample names (`math`, `science`, `graph`) map to their files."""
    if spec in BUNDLED:
        return str(SAMPLES_DIR / f"{spec}.jsonl")
    return spec


def load_problems(
    spec: str, *, fields: FieldMap | None = None, default_domain: str = "math"
) -> list[Problem]:
    """Load and validate problems from a dataset spec.

    Raises:
        DataError: unreadable source, malformed row, missing field, duplicate id, or no rows.
    """
    fields = fields or FieldMap()
    spec = resolve_bundled(spec)
    if spec.startswith("rg:"):
        problems = _load_reasoning_gym(spec[3:])
    elif spec.startswith("hf:"):
        rows = _load_hub(spec[3:])
        problems = _to_problems(rows, fields, default_domain, source="hf", origin=spec)
    else:
        rows = _load_file(Path(spec))
        problems = _to_problems(rows, fields, default_domain, source="file", origin=spec)
    if not problems:
        raise DataError(f"{spec}: the dataset has no problems")
    _check_unique(problems)
    return problems


def dataset_hash(problems: Iterable[Problem]) -> str:
    """sha256 of the problems as loaded: identical data gives the identical hash."""
    digest = hashlib.sha256()
    for p in problems:
        digest.update(orjson.dumps(p.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
    return digest.hexdigest()


def _load_file(path: Path) -> list[tuple[int, Any]]:
    if not path.exists():
        raise DataError(f"{path}: no such dataset file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass a .jsonl, .json or .parquet file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl_rows(path)
    if suffix == ".json":
        return _read_json_rows(path)
    if suffix == ".parquet":
        return list(enumerate(_read_parquet(path), start=1))
    raise DataError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json or .parquet)")


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    return raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is still UTF-8


def _read_json_rows(path: Path) -> list[tuple[int, Any]]:
    """A .json file: one array of objects, or JSON lines under a .json name.

    Parsed here rather than by `datasets`, whose Arrow conversion widens a column of
    mixed ints and floats to floats (answer 5 would become "5.0").
    """
    raw = _read_bytes(path)
    if not raw.strip():
        return []
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _read_jsonl_rows(path)
    if isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON array of problems, got an object")
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of problems")
    return list(enumerate(data, start=1))


def _read_jsonl_rows(path: Path) -> list[tuple[int, Any]]:
    rows = []
    raw = _read_bytes(path)
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((lineno, orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            kind = "not UTF-8" if "utf-8" in str(exc).lower() else "not valid JSON"
            raise DataError(f"{path}:{lineno}: {kind}") from None
    return rows


def _read_parquet(path: Path) -> list[Any]:
    from datasets import load_dataset

    try:
        ds = load_dataset("parquet", data_files=str(path), split="train")
    except Exception as exc:  # datasets wraps parse errors in several types
        raise DataError(f"{path}: cannot load ({type(exc).__name__}: {_first_line(exc)})") from None
    return list(ds)


def _load_hub(spec: str) -> list[tuple[int, Any]]:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise DataError(f"hf:{spec}: expected hf:org/name[:config]:split")
    name, split = parts[0], parts[-1]
    config = parts[1] if len(parts) == 3 else None
    from datasets import load_dataset

    try:
        with _hub_logs_quiet():
            ds = load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown dataset, unknown split
        raise DataError(
            f"hf:{spec}: cannot load from the Hugging Face hub ({type(exc).__name__}: "
            f"{_first_line(exc)}); offline? pass a local file instead"
        ) from None
    return list(enumerate(ds, start=1))


@contextlib.contextmanager
def _hub_logs_quiet() -> Iterator[None]:
    """Hold back the hub client's warnings while a dataset loads.

    Offline, huggingface_hub logs every retry of every request ("... thrown while
    requesting HEAD ...", "Retrying in 1s") to stderr; the failure is reported once, as
    the DataError below, so these lines would only break the one-line error contract.
    """
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "datasets")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _load_reasoning_gym(spec: str) -> list[Problem]:
    import reasoning_gym
    from reasoning_gym.factory import DATASETS

    name, _, query = spec.partition("?")
    if name not in DATASETS:
        close = [n for n in DATASETS if name[:4] in n][:5]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DataError(f"rg:{name}: unknown reasoning-gym generator{hint}")
    try:
        params = {k: int(v) for k, v in parse_qsl(query, strict_parsing=bool(query))}
    except ValueError:
        raise DataError(
            f"rg:{spec}: options must be integers, e.g. rg:{name}?size=32&seed=0"
        ) from None
    size, seed = params.pop("size", 32), params.pop("seed", 0)
    try:
        ds = reasoning_gym.create_dataset(name, size=size, seed=seed, **params)
    except Exception as exc:  # generator-specific config validation
        raise DataError(f"rg:{spec}: {_first_line(exc)}") from None
    problems = []
    for i, entry in enumerate(ds):
        problems.append(
            Problem(
                id=f"{name}-{seed}-{i}",
                question=str(entry["question"]),
                answer=str(entry["answer"]),
                domain=name,
                source="rg",
                metadata={"rg_dataset": name, "rg_entry": _jsonable(entry)},
            )
        )
    return problems


def _to_problems(
    rows: list[tuple[int, Any]],
    fields: FieldMap,
    default_domain: str,
    *,
    source: str,
    origin: str,
) -> list[Problem]:
    has_ids = any(isinstance(row, Mapping) and fields.id in row for _, row in rows)
    problems = []
    for index, (lineno, row) in enumerate(rows):
        where = f"{origin}:{lineno}" if source == "file" else f"{origin} row {lineno}"
        if not isinstance(row, Mapping):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        ident = row.get(fields.id) if has_ids else str(index)
        question = row.get(fields.question)
        answer = row.get(fields.answer)
        for name, value in (("id", ident), ("question", question), ("answer", answer)):
            field = getattr(fields, name)
            if value is None:
                raise DataError(f"{where}: missing field {field!r} (rename with --{name}-field)")
        if not isinstance(ident, str | int) or isinstance(ident, bool):
            raise DataError(f"{where}: field {fields.id!r} must be a string or integer")
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{where}: field {fields.question!r} must be a non-empty string")
        if not isinstance(answer, str | int | float) or isinstance(answer, bool):
            raise DataError(f"{where}: field {fields.answer!r} must be a string or number")
        if not str(answer).strip():
            raise DataError(f"{where}: field {fields.answer!r} is empty")
        domain = row.get(fields.domain, default_domain)
        problems.append(
            Problem(
                id=str(ident),
                question=question,
                answer=str(answer),
                domain=str(domain) if domain else default_domain,
                source=source,  # type: ignore[arg-type]
            )
        )
    return problems


def _check_unique(problems: list[Problem]) -> None:
    seen: set[str] = set()
    for p in problems:
        if p.id in seen:
            raise DataError(f"duplicate problem id {p.id!r}; ids must be unique")
        seen.add(p.id)


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


ROLLOUT_TEXT_FIELDS = ("response", "completion", "output", "text")
"""Field names accepted for the response text in --from-samples files, in order."""


def load_rollouts(
    path: str,
    *,
    fields: FieldMap | None = None,
    default_domain: str = "math",
    fmt: str = "auto",
) -> tuple[list[Problem], dict[str, list[str]]]:
    """Read saved rollouts for re-scoring (`--from-samples`).

    Schema, one JSON object per line: the problem fields (`id`, `question`, `answer`,
    optional `domain`; renamed with the same flags as datasets) plus the response
    text in `response` (or `completion`, `output`, `text`). Several lines may share
    a problem id: they are that problem's samples, in file order. Other tools' files
    (lm-evaluation-harness, verl, TRL) are converted first (`faithcheck.problems.rollouts`;
    `fmt` names the reader, `auto` detects it).

    Raises:
        DataError: unreadable file, malformed line, missing field, or a problem id
            whose question or answer differs between lines.
    """
    from faithcheck.problems.rollouts import FORMATS, convert

    if fmt not in FORMATS:
        raise DataError(f"--from-format must be one of {', '.join(FORMATS)}")
    rows = _load_file(Path(path))
    read, rows = convert(rows, fmt, path)  # type: ignore[arg-type]
    fields = fields or FieldMap() if read in ("faithcheck", "jsonl") else FieldMap()
    problems: dict[str, Problem] = {}
    responses: dict[str, list[str]] = {}
    for lineno, row in rows:
        text = next(
            (row[k] for k in ROLLOUT_TEXT_FIELDS if isinstance(row, Mapping) and k in row), None
        )
        if not isinstance(text, str):
            raise DataError(f"{path}:{lineno}: missing response text (field 'response')")
        (problem,) = _to_problems(
            [(lineno, row)], fields, default_domain, source="file", origin=path
        )
        seen = problems.setdefault(problem.id, problem)
        if (seen.question, seen.answer) != (problem.question, problem.answer):
            raise DataError(f"{path}:{lineno}: problem {problem.id!r} differs from its first line")
        responses.setdefault(problem.id, []).append(text)
    if not problems:
        raise DataError(f"{path}: no rollouts")
    return list(problems.values()), responses
