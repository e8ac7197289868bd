"""Split chain-of-thought responses into steps and pull out the final answer.

Everything here works on raw model output, which can be huge or adversarial, so every
function is total (never raises) and runs in roughly linear time: regexes are written
without nested unbounded quantifiers and brace matching is a single stack pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from faithcheck.records import Record


class Step(Record):
    """One reasoning step, with exact character offsets into the response text."""

    index: int
    """Position of the step in the response, from 0."""
    start: int
    """Offset of the first character of the (whitespace-stripped) step."""
    end: int
    """Offset one past the last character, so `response[start:end] == text`."""
    text: str
    """The step text, stripped of surrounding whitespace."""


AnswerRule = Literal["boxed", "answer_is", "last_number", "none"]


class AnswerExtraction(Record):
    """The final answer found in a response, and which rule found it."""

    answer: str | None
    """The answer text, or None when no rule matched."""
    rule: AnswerRule
    """The rule that produced the answer."""
    start: int | None
    """Offset of the answer text in the response (None when no answer)."""
    end: int | None
    """Offset one past the answer text (None when no answer)."""


# A blank line may contain stray spaces or tabs; newline-free whitespace keeps it linear.
_PARAGRAPH_SEP = re.compile(r"\n[^\S\n]*\n")
_LINE_SEP = re.compile(r"\n")
# Runs of terminal punctuation that are followed by whitespace end a sentence; a decimal
# point (3.5) is never followed by whitespace, so it cannot split. The lookbehind and the
# possessive run make each run of dots be scanned once, not once per dot.
_SENTENCE_END = re.compile(r"(?<![.!?])[.!?]++(?=\s)")
_ABBREVIATIONS = frozenset(
    {"e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "mr.", "mrs.", "ms.", "dr.", "fig.", "eq."}
)
_ABBREV_LOOKBACK = 12

# Escapes come first so that "\\{" is consumed whole and never counts as an opening brace.
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)
_BOXED = re.compile(r"\\(?:boxed|fbox)[^\S\n]*\{")
# The optional `**` around the colon covers markdown cues like "**Answer:** 7".
_ANSWER_CUE = re.compile(
    r"\banswer\b(?:\*\*)?(?:[^\S\n]+is\b(?:[^\S\n]*:(?:\*\*)?)?|[^\S\n]*:(?:\*\*)?)", re.IGNORECASE
)
_CLAUSE_END = re.compile(r"[.!?](?=\s|$)")
# Lookbehind keeps "3-4" from reading as "-4"; the thousands group must not be followed by
# a digit so that "12345" is one number, not "123" then "45".
_NUMBER = re.compile(
    r"(?:(?<![\w)\]}])-)?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?"
)


def _skip_space(text: str, pos: int) -> int:
    """Advance `pos` past whitespace (only forwards, so repeated calls stay linear)."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _stripped_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) so it neither starts nor ends with whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _segments(text: str, cuts: Iterator[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return non-empty stripped spans between consecutive (cut_start, cut_end) pairs."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for cut_start, cut_end in cuts:
        s, e = _stripped_span(text, pos, cut_start)
        if s < e:
            spans.append((s, e))
        pos = cut_end
    s, e = _stripped_span(text, pos, len(text))
    if s < e:
        spans.append((s, e))
    return spans


def _is_abbreviation(text: str, punct_end: int) -> bool:
    """True when the word ending at `punct_end` is a known abbreviation like "e.g."."""
    window = text[max(0, punct_end - _ABBREV_LOOKBACK) : punct_end]
    word = window.split()[-1] if window.split() else ""
    return word.lower().lstrip("(\"'") in _ABBREVIATIONS


def _is_list_marker(text: str, seg_start: int, punct_start: int) -> bool:
    """True for an enumeration marker such as "1." at the start of a sentence."""
    return punct_start - seg_start <= 3 and text[seg_start:punct_start].isdigit()


def _sentence_cuts(text: str) -> Iterator[tuple[int, int]]:
    """Yield cut points after sentence-ending punctuation, skipping abbreviations."""
    seg_start = _skip_space(text, 0)
    for m in _SENTENCE_END.finditer(text):
        if _is_abbreviation(text, m.end()) or _is_list_marker(text, seg_start, m.start()):
            continue
        yield m.end(), m.end()
        seg_start = _skip_space(text, m.end())


def _regex_cuts(pattern: re.Pattern[str], text: str) -> Iterator[tuple[int, int]]:
    return ((m.start(), m.end()) for m in pattern.finditer(text))


def split_steps(text: str) -> list[Step]:
    """Split a response into reasoning steps with exact offsets.

    Steps are blank-line separated paragraphs when there are at least two; otherwise
    non-empty lines when there are at least two; otherwise sentences.

    Args:
        text: The full response text.

    Returns:
        Steps in order, non-overlapping, with `text[s.start:s.end] == s.text`; an empty
        list for empty or whitespace-only text.
    """
    spans = _segments(text, _regex_cuts(_PARAGRAPH_SEP, text))
    if len(spans) < 2:
        spans = _segments(text, _regex_cuts(_LINE_SEP, text))
    if len(spans) < 2:
        spans = _segments(text, _sentence_cuts(text))
    return [Step(index=i, start=s, end=e, text=text[s:e]) for i, (s, e) in enumerate(spans)]


def _match_braces(text: str) -> dict[int, int]:
    """Map each `{` offset to its matching `}` offset in one pass.

    A backslash escapes the next character, so `\\{` and `\\}` are literal braces and do
    not take part in the nesting.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_TOKEN.finditer(text):
        tok = m.group()
        if tok == "{":
            stack.append(m.start())
        elif tok == "}" and stack:
            pairs[stack.pop()] = m.start()
    return pairs


def _from_boxed(text: str) -> AnswerExtraction | None:
    """Find the last closed, non-empty `\\boxed{...}` / `\\fbox{...}`.

    "Last" means the one that closes last, so for nested boxes the outer one wins.
    """
    opens = [m.end() - 1 for m in _BOXED.finditer(text)]
    if not opens:
        return None
    pairs = _match_braces(text)
    best: tuple[int, int] | None = None
    for brace in opens:
        close = pairs.get(brace)
        if close is None:
            continue
        s, e = _stripped_span(text, brace + 1, close)
        if s < e and (best is None or close > best[1]):
            best = (s, e)
    if best is None:
        return None
    return AnswerExtraction(
        answer=text[best[0] : best[1]], rule="boxed", start=best[0], end=best[1]
    )


def _unwrap(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim markdown bold, `$` math delimiters and trailing periods around an answer."""
    while True:
        s, e = _stripped_span(text, start, end)
        while e > s and text[e - 1] == ".":
            e -= 1
        s, e = _stripped_span(text, s, e)
        for wrap in ("**", "$"):
            w = len(wrap)
            if e - s >= 2 * w and text.startswith(wrap, s) and text.endswith(wrap, s, e):
                s, e = s + w, e - w
        if (s, e) == (start, end):
            return s, e
        start, end = s, e


def _answer_after(text: str, pos: int) -> tuple[int, int] | None:
    """Span of the answer that follows an "answer is" cue ending at `pos`."""
    s = _skip_space(text, pos)
    eol = text.find("\n", s)
    eol = len(text) if eol == -1 else eol
    clause = _CLAUSE_END.search(text, s, eol)
    s, e = _unwrap(text, s, clause.start() if clause else eol)
    return (s, e) if s < e else None


def _from_answer_cue(text: str) -> AnswerExtraction | None:
    """Find the last "answer is X" / "answer: X" / "Final answer: X" with a non-empty X."""
    for m in reversed(list(_ANSWER_CUE.finditer(text))):
        span = _answer_after(text, m.end())
        if span is not None:
            s, e = span
            return AnswerExtraction(answer=text[s:e], rule="answer_is", start=s, end=e)
    return None


def _from_last_number(text: str) -> AnswerExtraction | None:
    last: re.Match[str] | None = None
    for m in _NUMBER.finditer(text):
        last = m
    if last is None:
        return None
    return AnswerExtraction(
        answer=last.group(), rule="last_number", start=last.start(), end=last.end()
    )


def extract_answer(text: str) -> AnswerExtraction:
    """Extract the final answer from a response.

    Rules, in order: the last `\\boxed{...}` (or `\\fbox{...}`) with balanced braces; the
    last "answer is X" / "answer: X" cue, X running to the end of its line or sentence;
    the last number (integer, decimal, negative, thousands commas, simple fraction).

    Args:
        text: The full response text.

    Returns:
        The answer with its rule and span, or `answer=None, rule="none"` if nothing matched.
    """
    found = _from_boxed(text) or _from_answer_cue(text) or _from_last_number(text)
    return found or AnswerExtraction(answer=None, rule="none", start=None, end=None)


_MATH_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"))
# A text wrapper's opener, an escaped character (so `\{` is no brace and `\\text{` no
# opener), or a brace. The opener comes first so that it wins over the escape.
_WRAPPER_TOKEN = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{|\\.|[{}]", re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_SPACING = {"%": "%", "!": "", ",": " "}
"""LaTeX escapes that only format: `\\%` is a percent sign, `\\!` and `\\,` are spacing."""
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACES = re.compile(r"\s+")


def _strip_wrappers(ans: str) -> str:
    """Peel math delimiters, bold markers and trailing periods until nothing changes."""
    prev = None
    while prev != ans:
        prev = ans
        ans = ans.strip().rstrip(".").strip()
        for left, right in _MATH_DELIMS:
            if len(ans) >= len(left) + len(right) and ans.startswith(left) and ans.endswith(right):
                ans = ans[len(left) : len(ans) - len(right)]
                break
    return ans


def _unescape_spacing(ans: str) -> str:
    """Resolve `_SPACING` escapes in one left-to-right pass (`\\\\%` stays: the first
    backslash escapes the second)."""
    return _ESCAPE.sub(lambda m: _SPACING.get(m.group(1), m.group(0)), ans)


def _unwrap_text(ans: str) -> str:
    """Drop every `\\text{...}` (`textbf`, `mathrm`, `mbox`) wrapper whose content has no
    braces once the wrappers inside it are dropped: nested ones go in the same pass.

    One stack pass, so the result is final (a second call changes nothing) and the cost
    is linear whatever the nesting.
    """
    out: list[str] = []
    stack: list[list[Any]] = []  # [index of the opener in out, is a wrapper, content clean]
    pos = 0
    for m in _WRAPPER_TOKEN.finditer(ans):
        out.append(ans[pos : m.start()])
        pos = m.end()
        tok = m.group()
        if tok.endswith("{") and tok != "\\{":
            stack.append([len(out), tok != "{", True])
            out.append(tok)
        elif tok == "}" and stack:
            index, wrapper, clean = stack.pop()
            if wrapper and clean:
                out[index] = ""
            else:
                out.append(tok)
                if stack:
                    stack[-1][2] = False
        else:
            if tok in ("\\{", "\\}") and stack:
                stack[-1][2] = False
            out.append(tok)
    out.append(ans[pos:])
    return "".join(out)


def normalize_answer(ans: str) -> str:
    """Normalize an answer string for exact-match comparison.

    Conservative on purpose: it removes formatting (surrounding `$...$`, `\\text{...}`,
    bold, trailing period, thousands commas in a bare number, `\\dfrac`, extra spaces) and
    case, but leaves units and other content alone, so "12 cm" stays distinct from "12".
    Idempotent: a normalized answer normalizes to itself.

    Args:
        ans: A raw answer string.

    Returns:
        The normalized string.
    """
    ans = _strip_wrappers(ans.lower())
    ans = _unwrap_text(_unescape_spacing(ans))
    ans = ans.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    ans = _strip_wrappers(ans)
    if _THOUSANDS.fullmatch(ans):
        ans = ans.replace(",", "")
    return _SPACES.sub(" ", ans).strip()
