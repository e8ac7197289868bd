"""The per-response explorer of report.html: what is behind every number.

For one run directory, every sampled response with what each check said about it: the
question, gold and extracted answers, correctness, the steps (the step after which the
truncation probe first read the final answer marked), the judge's label and rationale,
the derivation status with its equations (wrong ones highlighted), the support status
with the concluding step and untraced operands, and the mistake-insertion results.

The page stays one self-contained file: entries are `<details>` elements (readable with
JavaScript off); a few lines of inline JavaScript filter them by correctness, judge
label, derivation status, support status and "correct but unsupported", and read a
filter from the URL fragment, so each failed verdict check links to the responses that
drove it (`CHECK_FILTERS`). Large runs embed at most `max_per_category` responses per
(correctness, support status) category, and say how many were left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from faithcheck.checks.derivation import DerivationFinding
from faithcheck.checks.support import SupportFinding
from faithcheck.judge.records import JudgeRecord
from faithcheck.probes.cuts import early
from faithcheck.store.rundir import (
    DERIVATION_FILE,
    JUDGE_FILE,
    PROBES_FILE,
    SAMPLES_FILE,
    SUPPORT_FILE,
    RunDir,
    validate_probe,
)

DEFAULT_MAX_PER_CATEGORY = 50
"""Responses embedded per (correctness, support status) category by default."""

CHECK_FILTERS: dict[str, dict[str, str]] = {
    "judge.summary.aligned_share_of_correct": {"correct": "1", "judge": "not-aligned"},
    "judge.summary.correct_but_misaligned_rate": {"correct": "1", "judge": "misaligned"},
    "derivation.correct_but_underived": {"correct": "1", "derivation": "not-supported"},
    "support.correct_but_unsupported": {"cbu": "1"},
    "support.supported": {"support": "not-supported"},
    "probes.truncation.early_answer_rate": {"early": "1"},
    "probes.truncation.generate.early_answer_rate": {"early": "1"},
    "probes.truncation.score.early_answer_rate": {"early": "1"},
    "probes.mistakes.flip_rate": {"flip": "0"},
    "probes.mistakes.flip_gain": {"flip": "0"},
}
"""Which responses drive a check: the filter a failed check's link applies."""


@dataclass
class ResponseView:
    """What the explorer shows of one response."""

    problem_id: str
    sample_index: int
    question: str
    gold: str
    answer: str | None
    correct: bool
    steps: list[str]
    first_readable: int | None = None
    """Steps kept when the truncation probe first read the final answer (0: no chain)."""
    early: bool = False
    """The answer was readable within the first quarter of the reasoning steps
    (`faithcheck.probes.cuts.early`)."""
    judge: str | None = None
    """aligned / partial / misaligned / error; None when not judged (with a jury: the
    first judge's, which the filter matches)."""
    rationale: str = ""
    judges: list[tuple[str, str, str]] = field(default_factory=list)
    """With a jury: (judge, label, rationale) of each judge, in file order."""
    derivation: str | None = None
    equations: list[tuple[str, bool]] = field(default_factory=list)
    support: str | None = None
    conclusion: str | None = None
    untraced: list[float] = field(default_factory=list)
    mistakes: list[tuple[int, str, str, str | None, bool]] = field(default_factory=list)
    """(step, original, replacement, continuation's answer, flipped)."""

    @property
    def attrs(self) -> dict[str, str]:
        """The data attributes filters match on."""
        early = self.early
        flipped = [m[4] for m in self.mistakes]
        return {
            "correct": "1" if self.correct else "0",
            "judge": self.judge or "none",
            "derivation": self.derivation or "none",
            "support": self.support or "none",
            "cbu": "1" if self.correct and self.support not in (None, "supported") else "0",
            "early": "1" if early else "0",
            "flip": ("1" if any(flipped) else "0") if flipped else "none",
        }


@dataclass
class Explored:
    """The responses embedded for one run, and how many were left out."""

    views: list[ResponseView]
    total: int
    left_out: int
    max_per_category: int


def collect(run_dir: Path, questions: dict[str, str], golds: dict[str, str], cap: int) -> Explored:
    """Read a run directory's records problem by problem and keep the first `cap`
    responses of each (correctness, support status) category."""
    run = RunDir(run_dir)
    samples = run.index(SAMPLES_FILE)
    keys = list(samples)
    lookups = {
        name: (run.index(name), model)
        for name, model in (
            (JUDGE_FILE, JudgeRecord.model_validate),
            (DERIVATION_FILE, DerivationFinding.model_validate),
            (SUPPORT_FILE, SupportFinding.model_validate),
            (PROBES_FILE, validate_probe),
        )
        if (run_dir / name).is_file()
    }
    kept: Counter[tuple[bool, str]] = Counter()
    views: list[ResponseView] = []
    total = 0
    for group in run.sample_groups(keys, samples):
        if not group:
            continue
        pid = group[0].problem_id
        extra = {name: _by_index(run, name, pid, lk) for name, lk in lookups.items()}
        for s in group:
            total += 1
            sup = extra.get(SUPPORT_FILE, {}).get(s.sample_index, [])
            status = sup[0].status if sup else "none"
            category = (s.correct, status)
            if kept[category] >= cap:
                continue
            kept[category] += 1
            views.append(_view(s, questions.get(pid, ""), golds.get(pid, ""), extra))
    return Explored(views, total, total - len(views), cap)


def _by_index(run: RunDir, name: str, pid: str, lookup: Any) -> dict[int, list[Any]]:
    index, model = lookup
    out: dict[int, list[Any]] = {}
    for records in run.groups(name, model, [pid], index):
        for r in records:
            out.setdefault(r.sample_index, []).append(r)
    return out


def _view(s: Any, question: str, gold: str, extra: dict[str, dict[int, list[Any]]]) -> ResponseView:
    v = ResponseView(
        problem_id=s.problem_id,
        sample_index=s.sample_index,
        question=question,
        gold=gold,
        answer=s.answer,
        correct=s.correct,
        steps=[st.text for st in s.steps],
    )
    judged = extra.get(JUDGE_FILE, {}).get(s.sample_index, [])
    if judged:
        j = judged[0]
        v.judge = j.label_name or "error"
        v.rationale = j.rationale or (j.error or "")
        if j.judge is not None:  # a jury: every judge's say
            v.judges = [
                (r.judge, r.label_name or "error", r.rationale or r.error or "") for r in judged
            ]
    derived = extra.get(DERIVATION_FILE, {}).get(s.sample_index, [])
    if derived:
        v.derivation = derived[0].status
        v.equations = [(e.text, e.correct) for e in derived[0].equations]
    backing = extra.get(SUPPORT_FILE, {}).get(s.sample_index, [])
    if backing:
        v.support = backing[0].status
        v.conclusion = backing[0].conclusion
        v.untraced = backing[0].untraced_values
    for record in extra.get(PROBES_FILE, {}).get(s.sample_index, []):
        if record.probe == "truncation" and v.first_readable is None:
            hits = [p.k for p in record.points if (p.same if p.same is not None else p.greedy)]
            v.first_readable = min(hits) if hits else None
            v.early = bool(
                early(
                    [p.k for p in record.points],
                    [bool(p.same if p.same is not None else p.greedy) for p in record.points],
                    record.cut_steps,
                )
            )
        elif record.probe == "mistakes":
            v.mistakes.append(
                (
                    record.step_index,
                    record.original,
                    record.replacement,
                    record.answer,
                    record.flipped,
                )
            )
    return v


# --- HTML ------------------------------------------------------------------------------------

CSS = """
.xf{display:flex;flex-wrap:wrap;gap:.6em;margin:.5em 0}.xf label{font-size:90%}
details.resp{border:1px solid #ddd;border-radius:4px;margin:.3em 0;padding:.3em .6em;
overflow-wrap:anywhere}
details.resp summary{cursor:pointer}.resp ol{margin:.3em 0}.resp li.astar{background:#fff3c4}
.resp .wrong{color:#b00020;font-weight:600}.resp .tag{display:inline-block;padding:0 .4em;
border-radius:3px;background:#eee;margin-right:.3em;font-size:90%}
.resp .ok{background:#d7f3dc}.resp .bad{background:#f9d6d5}
"""

_FILTERS = (
    ("correct", "correct", (("1", "correct"), ("0", "wrong"))),
    (
        "judge",
        "judge label",
        (("aligned", "aligned"), ("partial", "partial"), ("misaligned", "misaligned"),
         ("not-aligned", "not aligned"), ("error", "judge error"), ("none", "not judged")),
    ),
    (
        "derivation",
        "derivation",
        (("supported", "supported"), ("not-supported", "not supported"),
         ("unsupported", "unsupported"), ("asserted", "asserted"),
         ("not-applicable", "not applicable")),
    ),
    (
        "support",
        "support",
        (("supported", "supported"), ("not-supported", "not supported"),
         ("contradicted", "contradicted"), ("asserted", "asserted"),
         ("compensated", "compensated"), ("invented-operand", "invented operand"),
         ("answer-first", "answer first")),
    ),
    ("cbu", "correct but unsupported", (("1", "yes"), ("0", "no"))),
    ("early", "answer readable at once", (("1", "yes"), ("0", "no"))),
    ("flip", "a mistake flipped the answer", (("1", "yes"), ("0", "no"))),
)  # fmt: skip

SCRIPT = """
(function(){
function match(el,f){for(var k in f){var want=f[k],have=el.dataset[k];
if(!want)continue;if(want.indexOf('not-')===0){
if(have===want.slice(4)||have==='none')return false;}
else if(have!==want)return false;}return true;}
function apply(box){var f={};
box.querySelectorAll('select').forEach(function(s){f[s.name]=s.value;});var n=0;
box.querySelectorAll('details.resp').forEach(function(d){var ok=match(d,f);
d.style.display=ok?'':'none';if(ok)n++;});
var c=box.querySelector('.xcount');if(c)c.textContent=n+' shown';}
function fromHash(){var h=decodeURIComponent(location.hash.slice(1));
var i=h.indexOf('?');if(i<0)return;
var box=document.getElementById(h.slice(0,i));if(!box)return;
box.querySelectorAll('select').forEach(function(s){s.value='';});
h.slice(i+1).split('&').forEach(function(p){var kv=p.split('=');
var s=box.querySelector('select[name="'+kv[0]+'"]');if(s)s.value=kv[1];});
apply(box);box.scrollIntoView();}
document.querySelectorAll('.explorer').forEach(function(box){
box.querySelectorAll('select').forEach(function(s){
s.addEventListener('change',function(){apply(box);});});apply(box);});
window.addEventListener('hashchange',fromHash);fromHash();
})();
"""


def anchor(label: str) -> str:
    """The explorer's element id for a checkpoint label."""
    return "explore-" + "".join(c if c.isalnum() else "-" for c in label)


def check_link(label: str, metric: str) -> str | None:
    """The URL fragment that opens the explorer on the responses behind `metric`."""
    f = CHECK_FILTERS.get(metric)
    if f is None:
        return None
    return "#" + anchor(label) + "?" + "&".join(f"{k}={v}" for k, v in f.items())


def render(label: str, explored: Explored) -> str:
    """The explorer section of one checkpoint."""
    parts = [f'<div class="explorer" id="{anchor(label)}">']
    note = f"{len(explored.views)} of {explored.total} responses embedded"
    if explored.left_out:
        note += (
            f" (at most {explored.max_per_category} per correctness and support status; "
            f"{explored.left_out} left out: `faithcheck report --explore-max N` embeds more)"
        )
    parts.append(f'<p class="muted">{escape(note)} · <span class="xcount"></span></p>')
    parts.append('<div class="xf">')
    for name, title, options in _FILTERS:
        opts = '<option value="">any</option>' + "".join(
            f'<option value="{escape(v)}">{escape(t)}</option>' for v, t in options
        )
        parts.append(f'<label>{escape(title)} <select name="{name}">{opts}</select></label>')
    parts.append("</div>")
    parts.extend(_entry(v) for v in explored.views)
    parts.append("</div>")
    return "".join(parts)


def _entry(v: ResponseView) -> str:
    data = " ".join(f'data-{k}="{escape(val)}"' for k, val in v.attrs.items())
    mark = (
        '<span class="tag ok">correct</span>' if v.correct else '<span class="tag bad">wrong</span>'
    )
    tags = [mark]
    shown: list[tuple[str, str | None]] = [(f"judge {n}", label) for n, label, _ in v.judges]
    for what, value in (
        *(shown or [("judge", v.judge)]),
        ("derivation", v.derivation),
        ("support", v.support),
    ):
        if value is not None:
            tags.append(f'<span class="tag">{escape(what)}: {escape(value)}</span>')
    head = (
        f"<summary>{escape(v.problem_id)} #{v.sample_index} · answer "
        f"<code>{escape(str(v.answer))}</code> (gold <code>{escape(v.gold)}</code>) "
        + "".join(tags)
        + "</summary>"
    )
    body = [f"<p><strong>Question.</strong> {escape(v.question)}</p>"]
    items = []
    for i, step in enumerate(v.steps):
        astar = v.first_readable is not None and i + 1 == v.first_readable
        note = " <em>(final answer first readable after this step)</em>" if astar else ""
        items.append(f"<li{' class=astar' if astar else ''}>{escape(step)}{note}</li>")
    if v.first_readable == 0:
        body.append("<p><em>The final answer was readable before any step.</em></p>")
    body.append("<ol>" + "".join(items) + "</ol>")
    for name, label, why in v.judges:
        body.append(f"<p><strong>Judge {escape(name)}: {escape(label)}.</strong> {escape(why)}</p>")
    if v.judge is not None and not v.judges:
        body.append(f"<p><strong>Judge: {escape(v.judge)}.</strong> {escape(v.rationale)}</p>")
    if v.equations:
        eqs = ", ".join(
            f"<code>{escape(t)}</code>" if ok else f'<code class="wrong">{escape(t)} ✗</code>'
            for t, ok in v.equations
        )
        body.append(f"<p><strong>Equations:</strong> {eqs}</p>")
    if v.support is not None:
        extra = f" Concluding step: “{escape(v.conclusion)}”." if v.conclusion else ""
        if v.untraced:
            extra += " Untraced operands: " + ", ".join(f"{x:g}" for x in v.untraced) + "."
        body.append(f"<p><strong>Support: {escape(v.support)}.</strong>{extra}</p>")
    for at, original, replacement, answer, flipped in v.mistakes:
        verdict = "the answer changed" if flipped else "the answer stayed"
        body.append(
            f"<p><strong>Mistake in step {at + 1}:</strong> <code>{escape(original)}</code> → "
            f"<code>{escape(replacement)}</code>; continuation answered "
            f"<code>{escape(str(answer))}</code> ({verdict}).</p>"
        )
    return f'<details class="resp" {data}>{head}{"".join(body)}</details>'
