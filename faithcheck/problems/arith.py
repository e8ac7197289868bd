"""Find arithmetic chains (`A op B … = C = …`) in free text and evaluate them safely.

Nothing here calls `eval`, `exec` or a symbolic parser. Text goes through three linear
passes: a regex lexer (no nested unbounded quantifiers), a context pass that turns lexemes
into math tokens and *breaks*, and a recursive-descent parser that evaluates each side of an
equation exactly with `Fraction`. Every limit below makes a candidate side fail quietly.

Reading rules (the decisions behind them are in `faithcheck.checks.derivation`'s docstring):

- numbers: `1,200` (comma groups of exactly three; also `1{,}200`, `1\\,200`), `3.5`,
  `.5`, `-3` (a minus glued to its operand), `$12` (and `£ € ¥ ₹`), `12 cm`; up to three
  unit words after a number are skipped when an operator follows them (`80 km per hour ×
  2`), and so is a rate's unit glued to it by `/` (`£195/day × 12`: a word of two or more
  letters, not a variable);
- operators: `+ - − × x * · \\times \\cdot / ÷ \\div ^ ** ² ³`, `\\frac{a}{b}` /
  `\\dfrac` / `\\tfrac`, `%` (= /100), "of" after a percent or a fraction (`15% of 80`,
  `3/4 of 240`), the words times / plus / minus / multiplied by / divided by, and `x`
  only between two operands; implicit multiplication only for `2(3)` and `(2)(3)`;
- `=`, `==`, `:=`, `≈`, `\\approx` separate sides; `$`, `\\( \\)`, `\\[ \\]`, `\\boxed{}`
  are transparent, and so is `\\text{}` around a number (`\\text{12 cm}`); a `\\text{}` that
  does not start with a number is words: a unit after a number (`15 \\text{ dollars/hour}
  \\times 6`), else a label whose digits are not operands (`\\text{Savings in 4 weeks} = 150
  \\times 4` reads 150 × 4, not 4 = …);
- a unit's exponent belongs to the unit (`75 \\text{m}^3 \\times 1000`, `5 m^2`), not to the
  number before it;
- names: a one-letter name (not `a`, `A` or `I`), alone or glued after a number (`2y` is
  2 × y), is an operand whose value is looked up when its side is evaluated: bound by an
  earlier binding it is that value, unbound the side is not evaluated (see *Names* below);
- a *break* ends an expression. It is benign (ordinary words, `,` + space, `.`, `:`, `=>`)
  or poisoning (a one-letter name glued to what follows, `x2`, a word right after `+`, `×`
  or `÷` — the operator's operand, as in `Bill (84) + Tip (12.60)` — a function call such
  as `sqrt(`, a date `2024-01-15` / `1/15/2024`, a time or ratio `3:45`, an unknown LaTeX
  command, `_ < > |`, a stray `}`): a side that touches a poisoning break is not
  evaluated, because the break may belong to the expression;
- a line break (or a LaTeX row end `\\\\`) is a benign break unless the expression carries
  on across it (the line ends with an operator or `=`, or the next starts with `=` / `&=`);
- list markers (`1.` / `1)` at a line start, `- ` bullets) are breaks; `*` and `**` that are
  not between two operands (markdown emphasis, bullets) are ignored.

Names. A value bound to a name carries into later lines like a computed result (`scan`
reads, `link` joins, `Names` remembers, in reading order):

- a *binding* is `NAME = s1 = …` where NAME is a one-letter name or a label of up to five
  words written right before the `=` (`Total cost`, `\\text{Total cost}`); the name is
  bound to its last side's value;
- bindings of one name with nothing computed between them are one chain, their sides in
  order (`P = 2 × 20`, then `P = 40` on the next line is `2 × 20 = 40`; a wrong one is a
  wrong link), and a run whose last side still computes (`Total = 40 × 7`, no result
  written) produces that side's value;
- an equation `L = R` in one unbound one-letter name that is linear in it (L − R
  evaluated at 1, 2, 3 changes by one nonzero step) *pins* the name to its solution; the
  pins wait for the name's binding, which closes them into one chain (`2x + 2 = 38`,
  `2x = 36`, `x = 18`: three sides of 18; a wrong rewrite pins another value, a wrong
  link). Two unknowns, non-linear equations and chains of three sides are not pinned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

MAX_SIDE_CHARS = 200
"""Longest side (first to last token, in characters) that is evaluated."""
MAX_SIDE_TOKENS = 80
"""Most tokens in one side."""
MAX_DEPTH = 24
"""Deepest nesting of parentheses, unary minus and exponents."""
MAX_ABS = Fraction(10**15)
"""Largest magnitude of a literal or any intermediate value (and of a denominator)."""
MAX_EXPONENT = 64
"""Largest integer exponent; non-integer exponents are refused."""
MAX_LITERAL_CHARS = 24
"""Longest number literal (after dropping separators)."""
REL_TOL = Fraction(1, 10**9)
"""Relative tolerance of an exact comparison (values are exact, so this is a formality)."""
MAX_SCAN_CHARS = 100_000
"""Most characters (near `=` signs) read per text; beyond it, the last ones are read."""

# An equation side is at most MAX_SIDE_CHARS long, so text farther than this from every
# `=` can never be part of one and is not even lexed.
_WINDOW = MAX_SIDE_CHARS + 16
_HINTS = ("=", "≈", "\\approx")
_EQ_HINT = re.compile("|".join(map(re.escape, _HINTS)))

# Alternatives are tried in order; each is bounded or a single possessive run, so lexing is
# linear. [0-9] rather than \d: other Unicode digits are not numbers here.
_LEXER = re.compile(
    r"""
    (?P<ws>\s+|[&~]|\\[,;:!\ ]|\\q?quad(?![A-Za-z]))
   |(?P<date>(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}[-/][0-9]{1,2}[-/][0-9]{4})(?![0-9]))
   |(?P<clock>[0-9]+(?::[0-9]+)+)
   |(?P<num>[0-9]{1,3}(?:(?:,|\{,\}|\\,)[0-9]{3})++(?![0-9])(?:\.[0-9]+)?
        |[0-9]++(?:\.[0-9]+)?|\.[0-9]+)
   |(?P<env>\\(?:begin|end)\{[A-Za-z*]{0,20}\})
   |(?P<textword>\\(?:text|mathrm|textrm|mbox|textit|mathit|textbf|mathbf)\s*
        \{(?![\s]{0,5}[0-9.])[^{}\\]{0,60}\})
   |(?P<cmd>\\[A-Za-z]+)
   |(?P<delim>\\[()\[\]]|\$|\\\$|[£€¥₹])
   |(?P<pct>\\?%)
   |(?P<rowend>\\\\)
   |(?P<arrow>=>|->|<<|>>|[⇒→])
   |(?P<eq>==?|:=|≈)
   |(?P<op>\*\*|[-+*/^×÷·⋅−∗])
   |(?P<lp>[(\[{])
   |(?P<rp>[)\]}])
   |(?P<sup>[²³])
   |(?P<word>[^\W\d_²³¹]+)
   |(?P<poison>[_<>≠≤≥|√∑∏∫π])
   |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_OPS = {"-": "-", "−": "-", "+": "+", "*": "*", "×": "*", "·": "*", "⋅": "*", "∗": "*"}
_OPS |= {"/": "/", "÷": "/", "^": "^", "**": "^"}
_FRAC_CMDS = frozenset({"\\frac", "\\dfrac", "\\tfrac", "\\cfrac"})
_OP_CMDS = {"\\times": "*", "\\cdot": "*", "\\ast": "*", "\\div": "/"}
_TRANSPARENT_CMDS = frozenset(
    {"\\boxed", "\\fbox", "\\text", "\\mathrm", "\\textrm", "\\mbox", "\\textbf", "\\mathbf"}
    | {"\\textit", "\\mathit", "\\left", "\\right", "\\big", "\\Big", "\\bigl", "\\bigr"}
    | {"\\Bigl", "\\Bigr", "\\displaystyle"}
)
_BENIGN_CMDS = frozenset({"\\Rightarrow", "\\implies", "\\to", "\\rightarrow", "\\therefore"})
_SEPARATORS = re.compile(r"\{,\}|\\,|,")
_WORD_OPS = {"times": "*", "plus": "+", "minus": "-", "multiplied": "*", "divided": "/"}
_UNIT_LETTERS = frozenset("mgshLkK")
_ARTICLES = frozenset({"a", "A", "I"})


class _Refuse(Exception):
    """A side cannot be evaluated within the limits (never escapes this module)."""


@dataclass(slots=True)
class _Lex:
    kind: str
    start: int
    end: int
    gap: bool  # whitespace (or the window start) right before
    bol: bool  # first lexeme of a line


@dataclass(slots=True)
class _Tok:
    kind: str  # "n" number, "%", "o" operator, "(" / ")", "=" equals, "b" break
    start: int
    end: int
    gap: bool = False
    sym: str = ""  # operator; "(" "{" "f" paren flavour; "~" approx equals; "!" poisoning break
    value: Fraction | None = None
    decimals: int = 0


@dataclass(frozen=True, slots=True)
class Side:
    """One `=`-separated side of a chain, evaluated."""

    value: Fraction
    start: int
    end: int
    ops: int
    decimals: int | None = None  # written decimals when the side is a bare literal
    percent: bool = False  # bare percentage literal ("20%")
    lead: Side | None = None  # leading literal of a compound side ("15" in "15 + 2")
    names: tuple[Fraction, ...] = ()  # values of the names in the side ("x + 5", x bound)
    pin: bool = False  # an equation in one unbound name, read as the value it pins down

    def scaled(self, factor: int) -> Side:
        """The same literal read in other units (a percent as its number: 0.2 -> 20)."""
        return replace(self, value=self.value * factor, percent=False, lead=None)


@dataclass(frozen=True, slots=True)
class ArithChain:
    """`s0 = s1 = …`: two or more sides with at least one operation among them."""

    sides: tuple[Side, ...]
    approx: tuple[bool, ...]  # per link: written with ≈

    @property
    def correct(self) -> bool:
        """Every link agrees (see `agree`)."""
        links = zip(self.sides, self.sides[1:], self.approx, strict=False)
        return all(agree(a, b, approx=ap) for a, b, ap in links)

    @property
    def ops(self) -> int:
        """Operations performed over all sides."""
        return sum(s.ops for s in self.sides)


@dataclass(frozen=True, slots=True)
class Binding:
    """`NAME = s1 = s2 …` on one line: a name (a variable, a label) bound to the sides after
    it that evaluate, and the chains those sides form on their own."""

    name: str
    sides: tuple[Side, ...]
    approx: tuple[bool, ...]  # per link between sides
    chains: tuple[ArithChain, ...]
    update: bool = False  # the sides use the name itself ("x = x + 1"): a new value


def _close(a: Fraction, b: Fraction) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def _rounds_to(exact: Side, written: Side, approx: bool) -> bool:
    """`written` is `exact` rounded (either way at a tie) or truncated to its decimals."""
    if written.decimals is None or (written.decimals == 0 and not approx):
        return False
    unit = Fraction(1, 10**written.decimals) / (100 if written.percent else 1)
    if 2 * abs(exact.value - written.value) <= unit:
        return True
    return math.trunc(exact.value / unit) * unit == written.value


def agree(a: Side, b: Side, *, approx: bool = False) -> bool:
    """Whether two sides state the same value.

    Equal within `REL_TOL`, or one side is a bare decimal literal that the other side's
    value rounds or truncates to at the written precision ("1/3 = 0.33", "2/3 = 0.66").
    A literal written as an integer must be exact, except across `≈`.
    """
    return _close(a.value, b.value) or _rounds_to(a, b, approx) or _rounds_to(b, a, approx)


def _bounded(v: Fraction) -> Fraction:
    if abs(v) > MAX_ABS or v.denominator > MAX_ABS:
        raise _Refuse
    return v


def _power(base: Fraction, exp: Fraction) -> Fraction:
    if exp.denominator != 1 or abs(exp) > MAX_EXPONENT or (base == 0 and exp < 0):
        raise _Refuse
    size = max(abs(base.numerator), base.denominator)
    if size > 1 and abs(int(exp)) * math.log10(size) > 15.5:
        raise _Refuse
    return _bounded(base ** int(exp))


class _Parser:
    """Recursive descent over one side's tokens, evaluating as it goes.

    expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary | glued '(' …)* ;
    unary := '-' unary | power ; power := postfix ('^' unary)? ; postfix := atom '%'* ;
    atom := number | '(' expr ')'.
    """

    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0
        self.ops = 0
        self.depth = 0

    def parse(self) -> Fraction:
        value = self._expr()
        if self.i != len(self.toks):
            raise _Refuse
        return value

    def _peek(self, kind: str, syms: str = "") -> _Tok | None:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        if tok is None or tok.kind != kind or (syms and tok.sym not in syms):
            return None
        return tok

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refuse

    def _expr(self) -> Fraction:
        value = self._term()
        while tok := self._peek("o", "+-"):
            self.i += 1
            rhs = self._term()
            value = _bounded(value + rhs if tok.sym == "+" else value - rhs)
            self.ops += 1
        return value

    def _term(self) -> Fraction:
        value = self._unary()
        while True:
            tok = self._peek("o", "*/")
            glued = self._peek("(", "(")
            if tok:
                self.i += 1
                rhs = self._unary()
                if tok.sym == "/" and rhs == 0:
                    raise _Refuse
                value = value * rhs if tok.sym == "*" else value / rhs
            elif glued and not glued.gap:
                value = value * self._unary()
            else:
                return value
            value = _bounded(value)
            self.ops += 1

    def _unary(self) -> Fraction:
        if self._peek("o", "-"):
            self.i += 1
            self._nest()
            value = -self._unary()
            self.depth -= 1
            return value
        return self._power()

    def _power(self) -> Fraction:
        base = self._postfix()
        if not self._peek("o", "^"):
            return base
        self.i += 1
        self._nest()
        exp = self._unary()
        self.depth -= 1
        self.ops += 1
        return _power(base, exp)

    def _postfix(self) -> Fraction:
        value = self._atom()
        while self._peek("%"):
            self.i += 1
            value /= 100
            self.ops += 1
        return value

    def _atom(self) -> Fraction:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        if tok is None:
            raise _Refuse
        self.i += 1
        if tok.kind == "n":
            if tok.value is None:
                raise _Refuse
            return tok.value
        if tok.kind != "(":
            raise _Refuse
        self._nest()
        value = self._expr()
        if not self._peek(")"):
            raise _Refuse
        self.i += 1
        self.depth -= 1
        return value


def _lex(text: str, start: int, end: int) -> list[_Lex]:
    out: list[_Lex] = []
    gap, bol = True, start == 0
    for m in _LEXER.finditer(text, start, end):
        kind = m.lastgroup or "other"
        if kind == "ws":
            gap = True
            bol = bol or "\n" in m.group()
            continue
        out.append(_Lex(kind, m.start(), m.end(), gap, bol))
        gap = bol = False
    return out


class _Tokenizer:
    """Turn lexemes into math tokens and breaks, using a little context on either side."""

    def __init__(self, text: str, lexemes: list[_Lex]) -> None:
        self.text = text
        self.lx = lexemes
        self.j = 0
        self.out: list[_Tok] = []
        self.braces: list[str] = []  # "group" | "skip" | "frac1" | "frac2"

    def run(self) -> list[_Tok]:
        while self.j < len(self.lx):
            lx = self.lx[self.j]
            self.j += 1
            if lx.bol and lx.kind != "eq" and self.out and self.out[-1].kind not in "o(=":
                self._brk(lx)  # a new line starts a new expression unless it continues one
            getattr(self, "_" + lx.kind)(lx)
        return self.out

    # --- helpers ---------------------------------------------------------------------

    def _src(self, lx: _Lex | None) -> str:
        return "" if lx is None else self.text[lx.start : lx.end]

    def _at(self, k: int) -> _Lex | None:
        return self.lx[k] if k < len(self.lx) else None

    def _emit(self, kind: str, lx: _Lex, sym: str = "", end: int | None = None) -> _Tok:
        tok = _Tok(kind, lx.start, lx.end if end is None else end, lx.gap, sym)
        self.out.append(tok)
        return tok

    def _brk(self, lx: _Lex, poison: bool = False) -> None:
        last = self.out[-1] if self.out else None
        if last is not None and last.kind == "b" and (last.sym == "!") == poison:
            return
        self._emit("b", lx, "!" if poison else "")

    def _after_operand(self) -> bool:
        return bool(self.out) and self.out[-1].kind in "n%)"

    def _skip_delims(self, k: int) -> int:
        while k < len(self.lx) and self.lx[k].kind == "delim":
            k += 1
        return k

    def _operand_next(self, k: int) -> bool:
        """An operand starts at lexeme k (after transparent delimiters)."""
        lx = self._at(self._skip_delims(k))
        if lx is None:
            return False
        src = self._src(lx)
        return lx.kind in ("num", "lp") or src in _FRAC_CMDS or src in ("-", "−")

    def _line_ends(self, k: int) -> bool:
        """A line break comes before the operand at lexeme k ("3x \\]" then "\\[ 54 …"
        on the next line: the x is a name, not "times")."""
        return any(lx.bol for lx in self.lx[k : self._skip_delims(k) + 1])

    def _continues(self, k: int) -> bool:
        """Lexeme k carries an expression on (an operator, `=` or a closing paren)."""
        lx = self._at(self._skip_delims(k))
        if lx is None:
            return False
        src = self._src(lx)
        if lx.kind in ("op", "eq", "rp"):
            return True
        return src in _OP_CMDS or src == "\\approx" or src in _WORD_OPS or src in ("x", "X")

    def _unit_power(self, k: int) -> int:
        """Lexemes of a unit's exponent at k (`^3`, `^{3}`, glued to the unit), else 0:
        in `75 m^3 × 1000` the power belongs to the metre, not to 75."""
        hat = self._at(k)
        if hat is None or hat.gap or self._src(hat) != "^":
            return 0
        run = [self._at(k + i) for i in range(1, 4)]
        if run[0] is not None and run[0].kind == "num" and not run[0].gap:
            return 2
        if all(lx is not None and not lx.gap for lx in run) and [
            self._src(lx) if lx.kind != "num" else "N" for lx in run if lx is not None
        ] == ["{", "N", "}"]:
            return 4
        return 0

    def _unit_run(self, k: int) -> int | None:
        """End of 1-3 unit words starting at lexeme k, if an operator follows them."""
        start = k
        for _ in range(3):
            lx = self._at(k)
            src = self._src(lx)
            if lx is None or lx.kind not in ("word", "textword") or src in _WORD_OPS:
                break
            if len(src) == 1 and src not in _UNIT_LETTERS:
                break
            k += 1
            while (nxt := self._at(k)) is not None and nxt.kind == "sup":
                k += 1
            k += self._unit_power(k)
            a, b = self._at(k), self._at(k + 1)
            if a and b and self._src(a) == "/" and b.kind == "word" and not (a.gap or b.gap):
                k += 2  # km/h
        return k if k > start and self._continues(k) else None

    # --- lexeme handlers (named after the lexer's groups) ----------------------------

    def _num(self, lx: _Lex) -> None:
        nxt = self._at(self.j)
        if lx.bol and nxt is not None and self._src(nxt) == ")" and not nxt.gap:
            self.j += 1  # "1)" list marker
            self._brk(lx)
            return
        clean = self._src(lx)
        if not clean.isdigit():
            clean = _SEPARATORS.sub("", clean)
        tok = self._emit("n", lx)
        whole, _, frac = clean.partition(".")
        tok.decimals = len(frac)
        if len(clean) <= MAX_LITERAL_CHARS:
            value = Fraction(int(whole + frac), 10 ** len(frac))
            tok.value = value if abs(value) <= MAX_ABS else None

    def _word(self, lx: _Lex) -> None:
        src = self._src(lx)
        nxt = self._at(self.j)
        if self._after_operand() and self._word_after_operand(lx, src):
            return
        glued = nxt is not None and not nxt.gap and nxt.kind in ("num", "lp")
        unit = self._after_operand() and src in _UNIT_LETTERS
        variable = len(src) == 1 and src not in _ARTICLES and not unit
        if variable and not glued and self._name(lx, src):
            return
        self._brk(lx, poison=glued or variable or self._operand_word())

    def _name(self, lx: _Lex, src: str) -> bool:
        """A one-letter name: an operand whose value is looked up when its side is
        evaluated (`Names`), alone or glued after a number ("2x" is 2 × x)."""
        if self._after_operand():
            last = self.out[-1]
            if lx.gap or last.kind not in "n)" or last.sym:
                return False
            self._emit("o", lx, "*", end=lx.start)
        self._emit("n", lx, src)
        return True

    def _operand_word(self) -> bool:
        """A word right after `+`, `×` or `÷` is that operator's operand ("Bill (84) + Tip
        (12.60) = 96.60"): the expression runs through the word, so the sides beside it
        are not what they seem. A `-` is left out (a hyphen: "3-step")."""
        last = self.out[-1] if self.out else None
        return last is not None and last.kind == "o" and last.sym in ("+", "*", "/")

    def _word_after_operand(self, lx: _Lex, src: str) -> bool:
        """Handle a word that follows an operand; False when it is just a break."""
        last = self.out[-1]
        if src in ("x", "X") and self._operand_next(self.j) and not self._line_ends(self.j):
            self._emit("o", lx, "*")
        elif src == "percent" and last.kind == "n":
            self._emit("%", lx)
        elif src == "of" and self._operand_next(self.j) and self._fraction_before():
            self._emit("o", lx, "*")
        elif src in _WORD_OPS:
            by = self._at(self.j)
            needs_by = src in ("multiplied", "divided")
            if needs_by and (by is None or self._src(by) != "by"):
                return False
            if not self._operand_next(self.j + needs_by):
                return False
            self.j += needs_by
            self._emit("o", lx, _WORD_OPS[src])
        elif last.kind in "n%" and (end := self._unit_run(self.j - 1)) is not None:
            self.j = end
        else:
            return False
        return True

    def _fraction_before(self) -> bool:
        out = self.out
        if out[-1].kind == "%" or (out[-1].kind == ")" and out[-1].sym == "f"):
            return True
        return len(out) >= 3 and out[-1].kind == "n" and out[-2].sym == "/" and out[-3].kind == "n"

    def _textword(self, lx: _Lex) -> None:
        if self.out and self.out[-1].kind in "n%":
            end = self._unit_run(self.j - 1)
            if end is not None:
                self.j = end
                return
        self._brk(lx)

    def _cmd(self, lx: _Lex) -> None:
        src = self._src(lx)
        nxt = self._at(self.j)
        opens = nxt is not None and self._src(nxt) == "{"
        if src in _FRAC_CMDS and opens and nxt is not None:
            self._emit("(", lx, "f")
            self._emit("(", lx, "f", end=nxt.end)
            self.braces.append("frac1")
            self.j += 1
        elif src in _TRANSPARENT_CMDS:
            if opens:
                self.braces.append("skip")
                self.j += 1
        elif src in _OP_CMDS:
            self._emit("o", lx, _OP_CMDS[src])
        elif src == "\\approx":
            self._emit("=", lx, "~")
        else:
            self._brk(lx, poison=src not in _BENIGN_CMDS)

    def _lp(self, lx: _Lex) -> None:
        if self._src(lx) == "{":
            self.braces.append("group")
            self._emit("(", lx, "{")
        else:
            self._emit("(", lx, "(")

    def _rp(self, lx: _Lex) -> None:
        if self._src(lx) != "}":
            self._emit(")", lx, "(")
            return
        frame = self.braces.pop() if self.braces else None
        if frame is None:
            self._brk(lx, poison=True)
        elif frame == "group":
            self._emit(")", lx, "{")
        elif frame == "frac2":
            self._emit(")", lx, "f")
            self._emit(")", lx, "f")
        elif frame == "frac1":
            self._emit(")", lx, "f")
            nxt = self._at(self.j)
            if nxt is None or self._src(nxt) != "{":
                self._brk(lx, poison=True)
                return
            self._emit("o", nxt, "/")
            self._emit("(", nxt, "f")
            self.braces.append("frac2")
            self.j += 1

    def _op(self, lx: _Lex) -> None:
        sym = _OPS[self._src(lx)]
        nxt = self._at(self.j)
        if sym == "/" and self._rate_unit(lx, nxt):
            self.j += 1  # "£195/day": a unit, not a division by a word
            return
        if self._src(lx) in ("*", "**") and not (
            self._after_operand() and self._operand_next(self.j)
        ):
            return  # markdown emphasis or a bullet: "= **12**" still reads 12
        if sym == "-" and lx.bol and (nxt is None or nxt.gap):
            self._brk(lx)  # "- " bullet
        else:
            self._emit("o", lx, sym)

    def _rate_unit(self, lx: _Lex, nxt: _Lex | None) -> bool:
        """`/` glued between a number and a word of two or more letters is a rate's unit
        ("£195/day", "12 days/month" is read by `_unit_run`); a single letter is a
        variable ("12/x")."""
        if lx.gap or nxt is None or nxt.gap or not self.out or self.out[-1].kind not in "n%":
            return False
        src = self._src(nxt)
        return nxt.kind == "word" and len(src) > 1 and src not in _WORD_OPS

    def _sup(self, lx: _Lex) -> None:
        if not self._after_operand():
            self._brk(lx)
            return
        self._emit("o", lx, "^")
        tok = self._emit("n", lx)
        tok.value = Fraction(2 if self._src(lx) == "²" else 3)
        tok.gap = False

    def _pct(self, lx: _Lex) -> None:
        if self._after_operand():
            self._emit("%", lx)
        else:
            self._brk(lx)

    def _eq(self, lx: _Lex) -> None:
        self._emit("=", lx, "~" if self._src(lx) == "≈" else "")

    def _other(self, lx: _Lex) -> None:
        nxt = self._at(self.j)
        glued = self._src(lx) == "," and nxt is not None and not nxt.gap and nxt.kind == "num"
        self._brk(lx, poison=glued)  # "(3,4)" is a pair, not two numbers

    def _delim(self, lx: _Lex) -> None:
        pass

    def _date(self, lx: _Lex) -> None:
        self._brk(lx, poison=True)

    _clock = _poison = _date

    def _rowend(self, lx: _Lex) -> None:
        nxt = self._at(self.j)
        if nxt is None or nxt.kind != "eq":
            self._brk(lx)  # a LaTeX row ends an expression unless the next row is "&= …"

    def _env(self, lx: _Lex) -> None:
        self._brk(lx)

    _arrow = _env


def _tokens(text: str, start: int = 0, end: int | None = None) -> list[_Tok]:
    """Math tokens and breaks of `text[start:end]`."""
    end = len(text) if end is None else end
    return _Tokenizer(text, _lex(text, start, end)).run()


def _strip_unmatched(toks: list[_Tok]) -> list[_Tok] | None:
    """Drop unmatched parens at either end ("(4 + 3", "7)", "14 (total"); None if inside."""
    opens: list[int] = []
    unmatched: set[int] = set()
    for i, tok in enumerate(toks):
        if tok.kind == "(":
            opens.append(i)
        elif tok.kind == ")":
            if opens:
                opens.pop()
            else:
                unmatched.add(i)
    unmatched.update(opens)
    lo, hi = 0, len(toks)
    while lo < hi and lo in unmatched:
        lo += 1
    while hi > lo and hi - 1 in unmatched:
        hi -= 1
    if any(lo <= i < hi for i in unmatched):
        return None
    return toks[lo:hi]


def _literal(toks: list[_Tok]) -> tuple[int, bool] | None:
    """(written decimals, is percent) when the tokens are a bare literal like -3.5%."""
    core = toks[1:] if toks[0].kind == "o" else toks
    percent = len(core) == 2 and core[1].kind == "%"
    if core and core[0].kind == "n" and (len(core) == 1 or percent):
        return core[0].decimals, percent
    return None


def _make_side(toks: list[_Tok], bound: Mapping[str, Fraction] | None = None) -> Side | None:
    """Evaluate one side, its names (`_Tok.sym` on a number token) by their `bound`
    values; None when it is empty, malformed, outside the limits or uses an unbound name."""
    stripped = _strip_unmatched(toks) if toks else None
    if not stripped or len(stripped) > MAX_SIDE_TOKENS:
        return None
    toks = stripped
    names: list[Fraction] = []
    if any(t.kind == "n" and t.sym for t in toks):
        toks = [replace(t) for t in toks]
        for tok in toks:
            if tok.kind == "n" and tok.sym:
                if bound is None or tok.sym not in bound:
                    return None
                tok.value = bound[tok.sym]
                names.append(tok.value)
    if toks[-1].end - toks[0].start > MAX_SIDE_CHARS:
        return None
    if toks[0].kind == "o" and (len(toks) < 2 or toks[1].gap):
        return None  # "x - 3": a spaced leading minus continues something unread
    parser = _Parser(toks)
    try:
        value = parser.parse()
    except (_Refuse, ZeroDivisionError, OverflowError, ValueError):
        return None
    lit = _literal(toks)
    first = toks[0]
    lead = None
    if lit is None and first.kind == "n" and first.value is not None and not first.sym:
        lead = Side(first.value, first.start, first.end, 0, first.decimals)
    decimals, percent = lit if lit and not names else (None, False)
    start, end = toks[0].start, toks[-1].end
    return Side(value, start, end, parser.ops, decimals, percent, lead, tuple(names))


def _split_run_on(run: list[Side], links: list[bool]) -> list[ArithChain]:
    """Split `5 × 3 = 15 + 2 = 17` into `5 × 3 = 15` and `15 + 2 = 17`.

    A link that disagrees is split when the next side starts with a literal that agrees
    with the previous side: the writer carried the running total on.
    """
    chains: list[ArithChain] = []
    sides: list[Side] = [run[0]]
    approx: list[bool] = []
    for prev, side, ap in zip(run[:-1], run[1:], links, strict=True):
        lead = side.lead
        if lead is not None and not agree(prev, side, approx=ap) and agree(prev, lead, approx=ap):
            chains.append(ArithChain((*sides, lead), (*approx, ap)))
            sides, approx = [side], []
        else:
            sides.append(side)
            approx.append(ap)
    chains.append(ArithChain(tuple(sides), tuple(approx)))
    return [c for c in chains if len(c.sides) >= 2 and c.ops >= 1]


_LABEL_CMD = re.compile(
    r"\\(?:text|mathrm|textrm|mbox|textit|mathit|textbf|mathbf|operatorname)\s*\{([^{}\\]{0,60})\}"
)
_MARKUP = re.compile(r"\\[()\[\]]|\\[,;: ]|[$*&]")
_NAME_END = re.compile(
    r"(?:^|(?<=[\s(\[{:;,]))([A-Za-z][\w']*(?:[ \t]+[A-Za-z][\w']*){0,4})[ \t]*$"
)
_LIST_MARKER = re.compile(r"^\s*(?:[0-9]{1,2}[.)]|[-•])\s+")
_NOT_BEFORE_NAME = frozenset("+-−*/×÷^·=)]}.\\0123456789")


def _name_before(text: str, pos: int) -> str | None:
    """The name written right before the `=` at `pos` on its line: a variable (its last
    word is one letter: "so x"), or a label of up to five words ("Total cost",
    `\\text{Total cost}`), lower-cased. None when what precedes is not a name ("2x",
    "(x + 4) + 3", "in 4 weeks")."""
    start = max(text.rfind("\n", 0, pos) + 1, pos - 120)
    head = _LIST_MARKER.sub("", text[start:pos])
    head = _LABEL_CMD.sub(lambda m: f" {m.group(1)} ", head)
    head = _MARKUP.sub(" ", head)
    m = _NAME_END.search(head)
    if m is None:
        return None
    before = head[: m.start(1)].rstrip()
    if before and before[-1] in _NOT_BEFORE_NAME:
        return None
    words = m.group(1).split()
    return words[-1] if len(words[-1]) == 1 else " ".join(w.lower() for w in words)


class Names:
    """What a response has said about its one-letter names so far, in reading order: the
    value each is bound to, and the equations in a name not yet bound, each read as the
    value it pins down ("2x + 140 = 198" pins x to 29), waiting for the name's binding."""

    def __init__(self) -> None:
        self.bound: dict[str, Fraction] = {}
        self.open: dict[str, list[Side]] = {}  # offsets from the start of the first text
        self.offset = 0
        """Where the text being read starts (`scan`'s caller reads one text after another)."""
        self.solves = 0

    def pin(self, seg: list[_Tok], groups: list[list[_Tok]]) -> None:
        """Read `L = R` in one unbound name as the value it pins down (`_solve`)."""
        if self.solves >= _MAX_SOLVES:
            return
        self.solves += 1
        solved = _solve(groups, self.bound)
        if solved is not None:
            name, value = solved
            pins = self.open.setdefault(name, [])
            offset = self.offset
            pins.append(Side(value, seg[0].start + offset, seg[-1].end + offset, 1, pin=True))
            del pins[:-_MAX_PINS]

    def bind(self, name: str, sides: list[Side]) -> list[Side]:
        """Bind `name` to the last side's value; the equations that pinned it come first."""
        self.bound[name] = sides[-1].value
        return [_shift_side(pin, -self.offset) for pin in self.open.pop(name, [])]


_MAX_PINS = 8
"""Equations in one unbound name kept for its binding (the latest)."""
_MAX_SOLVES = 1000
"""Equations in an unbound name solved per response (bounds the work; a response that
writes more is not algebra)."""


def _solve(groups: list[list[_Tok]], bound: Mapping[str, Fraction]) -> tuple[str, Fraction] | None:
    """(name, value) when `L = R` is linear in one unbound name with one solution.

    Evaluated at name = 1, 2, 3 with the same exact arithmetic as any side: L − R must
    change by the same nonzero step each time, and the solution is where it is zero.
    """
    free = {t.sym for g in groups for t in g if t.kind == "n" and t.sym and t.sym not in bound}
    if len(free) != 1:
        return None
    name = free.pop()
    diffs = []
    for trial in (1, 2, 3):
        values = {**bound, name: Fraction(trial)}
        lhs, rhs = _make_side(groups[0], values), _make_side(groups[1], values)
        if lhs is None or rhs is None:
            return None
        diffs.append(lhs.value - rhs.value)
    step = diffs[1] - diffs[0]
    if step == 0 or diffs[2] - diffs[1] != step:
        return None
    return name, 1 - diffs[0] / step


def _head(groups: list[list[_Tok]], seg: list[_Tok], text: str) -> str | None:
    """The name a segment binds: a lone one-letter name before its first `=` ("x = …"),
    or, when it opens with `=`, the name written before it (`_name_before`)."""
    first = groups[0]
    if len(first) == 1 and first[0].kind == "n" and first[0].sym:
        return first[0].sym
    return None if first else _name_before(text, seg[0].start)


def _segment_chains(
    seg: list[_Tok], poison_start: bool, poison_end: bool, text: str, names: Names
) -> list[ArithChain | Binding]:
    groups: list[list[_Tok]] = [[]]
    links: list[bool] = []
    for tok in seg:
        if tok.kind == "=":
            groups.append([])
            links.append(tok.sym == "~")
        else:
            groups[-1].append(tok)
    if not links:
        return []
    # a lone name right after a cut or a poisoning break may be the end of something
    # unread ("2x = 4" cut to "x = 4"): not a binding
    head = None if poison_start and groups[0] else _head(groups, seg, text)
    last = len(groups) - 1
    sides = [
        None
        if (i == 0 and (poison_start or head)) or (i == last and poison_end)
        else _make_side(g, names.bound)
        for i, g in enumerate(groups)
    ]
    if last == 1 and head is None and None in sides and not (poison_start or poison_end):
        names.pin(seg, groups)
    items: list[ArithChain | Binding] = []
    i = 0
    while i < len(sides):
        j = i
        while j < len(sides) and sides[j] is not None:
            j += 1
        run = [s for s in sides[i:j] if s is not None]
        chains = _split_run_on(run, links[i : j - 1]) if j - i >= 2 else []
        if head and i == 1 and run:  # "NAME = s1 = …"
            update = any(t.kind == "n" and t.sym == head for g in groups[1:j] for t in g)
            pins = names.bind(head, run) if len(head) == 1 else []
            approx = (False,) * len(pins) + tuple(links[1 : j - 1])
            items.append(Binding(head, (*pins, *run), approx, tuple(chains), update))
        else:
            items.extend(chains)
        i = j + 1
    return items


def _last_hint(text: str, lo: int, hi: int) -> int:
    """Offset of the last `=`-like hint that starts in [lo, hi), or -1."""
    return max(text.rfind(h, lo, hi + len(h) - 1) for h in _HINTS)


def _windows(text: str) -> list[tuple[int, int]]:
    """Merged spans within `_WINDOW` of an `=`; dense runs are crossed a window at a time."""
    spans: list[tuple[int, int]] = []
    n, pos = len(text), 0
    while (m := _EQ_HINT.search(text, pos)) is not None:
        start, reach = max(0, m.start() - _WINDOW), m.start() + 1 + _WINDOW
        while reach < n and (q := _last_hint(text, reach - _WINDOW, reach)) >= 0:
            reach = q + 1 + _WINDOW
        reach = min(reach, n)
        if spans and start <= spans[-1][1]:
            start = spans.pop()[0]
        spans.append((start, reach))
        pos = reach
    return spans


def _budgeted(spans: list[tuple[int, int]], budget: int) -> list[tuple[int, int]]:
    """The last `budget` characters of the spans (the answer is derived near the end)."""
    kept: list[tuple[int, int]] = []
    for s, e in reversed(spans):
        if budget <= 0:
            break
        s = max(s, e - budget)
        kept.append((s, e))
        budget -= e - s
    return kept[::-1]


def scan_size(text: str) -> int:
    """Characters of `text` that `find_chains` reads without a budget."""
    return sum(e - s for s, e in _windows(text))


def scan(
    text: str, budget: int = MAX_SCAN_CHARS, names: Names | None = None, offset: int = 0
) -> list[ArithChain | Binding]:
    """The arithmetic chains and the bindings (`NAME = …`) in `text`, in order, with
    offsets into `text`; a binding holds the chains its own sides form. `link` reads them
    as a whole. `names` carries what earlier text bound (updated as `text` is read), and
    `offset` says where `text` starts in the whole that `names` has read.

    Only text within `MAX_SIDE_CHARS` of an `=` is read, and of that only the last
    `budget` characters. A window cut inside running text counts as a poisoning break, so
    a side never starts or ends at a cut.
    """
    names = Names() if names is None else names
    names.offset = offset
    items: list[ArithChain | Binding] = []
    for ws, we in _budgeted(_windows(text), budget):
        seg: list[_Tok] = []
        poisoned = ws > 0
        for tok in _tokens(text, ws, we):
            if tok.kind != "b":
                seg.append(tok)
                continue
            if seg:
                items.extend(_segment_chains(seg, poisoned, tok.sym == "!", text, names))
            seg, poisoned = [], tok.sym == "!"
        if seg:
            items.extend(_segment_chains(seg, poisoned, we < len(text), text, names))
    return items


def find_chains(text: str, budget: int = MAX_SCAN_CHARS) -> list[ArithChain]:
    """All arithmetic chains in `text`, line by line (`scan`, bindings not linked), in
    order, with offsets into `text`."""
    out: list[ArithChain] = []
    for item in scan(text, budget):
        out.extend(item.chains if isinstance(item, Binding) else (item,))
    return out


def _shift_side(side: Side, offset: int) -> Side:
    lead = None if side.lead is None else _shift_side(side.lead, offset)
    return replace(side, start=side.start + offset, end=side.end + offset, lead=lead)


def shift(item: ArithChain | Binding, offset: int) -> ArithChain | Binding:
    """The same chain or binding with its offsets moved by `offset` (a step's start)."""
    if isinstance(item, ArithChain):
        return ArithChain(tuple(_shift_side(s, offset) for s in item.sides), item.approx)
    chains = tuple(shift(c, offset) for c in item.chains)
    sides = tuple(_shift_side(s, offset) for s in item.sides)
    return Binding(item.name, sides, item.approx, chains, item.update)  # type: ignore[arg-type]


def link(items: Sequence[ArithChain | Binding]) -> list[ArithChain]:
    """The chains of a response read as a whole, from `scan`'s items in order.

    A name carries its value from line to line as a computed result does. Bindings of
    one name with nothing computed between them (no other chain, no other name's binding)
    are one chain, their sides in order: "P = 2 × (12 + 8)", "P = 2 × 20", "P = 40" on
    three lines is `2 × (12 + 8) = 2 × 20 = 40`, and a wrong one ("C = 40 × 7", then "C
    = 290") is a wrong link, an arithmetic error like any other. Such a run (or a single
    binding) whose last side still computes ("Total = 40 × 7", the result never written)
    produces that side's value, as if written after it. A binding that uses its own name
    ("x = x + 1") gives the name a new value: it starts a run of its own. Everything else
    is as `scan` read it.
    """
    out: list[ArithChain] = []
    run: list[Binding] = []

    def close() -> None:
        if run:
            sides = [s for b in run for s in b.sides]
            links = [ap for b in run for ap in (*b.approx, False)][:-1]
            if _computes(sides[-1]):
                end = sides[-1].end
                sides.append(Side(sides[-1].value, end, end, 0))
                links.append(False)
            out.extend(_split_run_on(sides, links))
        run.clear()

    for item in items:
        if isinstance(item, Binding) and (
            not run or (run[-1].name == item.name and not item.update)
        ):
            run.append(item)
            continue
        close()
        if isinstance(item, Binding):
            run.append(item)
        else:
            out.append(item)
    close()
    return out


def _computes(side: Side) -> bool:
    """A side with an operation that is not a bare literal ("3 × 4", not "20%")."""
    return side.ops > 0 and side.decimals is None


def literals(text: str, start: int = 0, end: int | None = None) -> list[tuple[Fraction, bool, int]]:
    """The number literals written in `text[start:end]` (a side's operands), in order, each
    as (value, whether a `%` follows it, decimals written). Signs are operators, so
    literals are never negative."""
    toks = _tokens(text, start, end)
    out = []
    for i, tok in enumerate(toks):
        if tok.kind == "n" and tok.value is not None:
            pct = i + 1 < len(toks) and toks[i + 1].kind == "%"
            out.append((tok.value, pct, tok.decimals))
    return out


def read_value(text: str) -> Side | None:
    """Read a short answer string ("12 cm", "\\frac{3}{4}", "20%", "x = 5") as one value.

    After the last `=` if there is one, the tokens must form exactly one expression with
    no poisoning break (so "5x", "2, 3" and "3 apples and 4 pears" give None).
    """
    if len(text) > MAX_SIDE_CHARS:
        return None
    toks = _tokens(text)
    eqs = [i for i, tok in enumerate(toks) if tok.kind == "="]
    toks = toks[eqs[-1] + 1 :] if eqs else toks
    if any(tok.kind == "b" and tok.sym == "!" for tok in toks):
        return None
    parts: list[list[_Tok]] = [[]]
    for tok in toks:
        if tok.kind == "b":
            parts.append([])
        else:
            parts[-1].append(tok)
    nonempty = [p for p in parts if p]
    return _make_side(nonempty[0]) if len(nonempty) == 1 else None
