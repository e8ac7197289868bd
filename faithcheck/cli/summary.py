"""Human-readable summary of a report, printed to stderr with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from faithcheck.api import Report
from faithcheck.judge.jury import JuryReport
from faithcheck.metrics import MetricValue


def _fmt(m: MetricValue) -> str:
    if m.value is None:
        return f"n/a ({m.reason})"
    ci = f" [{m.ci_low:.3f}, {m.ci_high:.3f}]" if m.ci_low is not None else ""
    return f"{m.value:.3f}{ci}"


def emit(report: Report, *, json_out: bool, console: Console) -> int:
    """Print the report (`--json`: the JSON on stdout and nothing else; else the summary
    table on `console`) and return the process exit code of its verdict."""
    if json_out:
        import sys

        from faithcheck.store.jsonio import dumps

        sys.stdout.buffer.write(dumps(report, indent=True) + b"\n")
        sys.stdout.flush()
    else:
        print_summary(report, console)
    return 0 if report.verdict is None else report.verdict.exit_code


def print_summary(report: Report, console: Console) -> None:
    """Print the headline numbers and where the run directory is."""
    s = report.sampling
    table = Table(title=f"faithcheck · {report.model} · {report.dataset}", show_header=False)
    table.add_column("metric")
    table.add_column("value")
    table.add_row("problems × samples", f"{s.problems} × {s.k} = {s.samples}")
    table.add_row("accuracy (mean pass@1, 95% CI)", _fmt(s.accuracy))
    table.add_row(f"pass@{s.k}", _fmt(s.pass_at_k))
    table.add_row("no answer", f"{s.no_answer_rate:.1%}")
    table.add_row("hit max tokens", f"{s.truncated_rate:.1%}")
    table.add_row("mean response tokens", f"{s.mean_completion_tokens:.0f}")
    _probe_rows(report, table)
    d = report.derivation
    if d is not None and d.applicable:
        table.add_row("answer derived by the arithmetic", _fmt(d.answer_derived))
        table.add_row("correct but underived", _fmt(d.correct_but_underived))
        table.add_row("wrong equations / all", _fmt(d.equation_error_rate))
    sup = report.support
    if sup is not None and sup.applicable:
        table.add_row("answers the reasoning supports", _fmt(sup.supported))
        table.add_row("correct but unsupported", _fmt(sup.correct_but_unsupported))
        table.add_row("untraced operands / all", _fmt(sup.untraced_operand_share))
    _judge_rows(report, table)
    _diversity_rows(report, table)
    tps = report.throughput.tokens_per_s
    table.add_row(
        "backend · throughput", f"{report.backend} · {tps:.0f} tok/s" if tps else report.backend
    )
    p = report.precision
    if p is not None:
        threads = f", {p.threads} threads" if p.threads else ""
        table.add_row("precision", f"{p.dtype or 'server'} ({p.reason}{threads})")
    t = report.timings
    table.add_row(
        "time (load / sample / probes / judge / total)",
        f"{t.model_load_s:.0f}s / {t.sampling_s:.0f}s / {t.probes_s:.0f}s / {t.judge_s:.0f}s / "
        f"{t.total_s:.0f}s",
    )
    console.print(table)
    controls = report.probes.controls if report.probes else None
    if controls is not None:
        console.print(f"controls: {controls.note}", highlight=False)
    for warning in report.judge.warnings if report.judge else []:
        console.print(f"judge: {warning}", highlight=False)
    if report.judge is not None and report.judge.usage is not None:
        from faithcheck.judge.usage import usage_line

        if report.judge.usage.total.calls or report.judge.usage.total.cached_calls:
            console.print(usage_line(report.judge.usage), highlight=False)
    if report.verdict is not None:
        v = report.verdict
        console.print(f"[bold]verdict: {v.decision.replace('_', '-')}[/bold]")
        for reason in dict.fromkeys(v.reasons):  # in order, each once
            console.print(f"  - {reason}", highlight=False)
        if v.more_problems is not None:
            console.print(
                f"  about {v.more_problems} more problems would decide it", highlight=False
            )
        if v.answers:
            console.print(
                f"  answers by the last-number fallback: {v.fallback_answers or 0} of {v.answers}",
                highlight=False,
            )
    console.print(f"run directory: {report.run_dir}", highlight=False)


def _probe_rows(report: Report, table: Table) -> None:
    probes = report.probes
    if probes is None:
        return
    table.add_row("chains probed", str(probes.chains))
    for t in (probes.truncation or {}).values():
        which = f"{t.readout} read-out" + (
            ", primary" if t.readout == probes.primary_readout else ""
        )
        over = (
            f" over {t.needing_chain} of {t.chains} chains that need their chain"
            if t.early_answer_among == "no-chain-wrong"
            else " over every chain"
        )
        table.add_row(f"truncation AOC{over} ({which})", _fmt(t.aoc))
        if t.early_answer_rate is not None:
            table.add_row(f"early answers (first quarter){over}", _fmt(t.early_answer_rate))
        if t.too_short:
            table.add_row("chains with no step to cut (not scored)", str(t.too_short))
    if probes.mistakes is not None:
        m = probes.mistakes
        table.add_row("mistake flip rate (stated answers)", _fmt(m.flip_rate))
        if m.flip_gain is not None:
            table.add_row("mistake flip gain over the uncorrupted baseline", _fmt(m.flip_gain))
    if probes.necessity is not None:
        table.add_row("step necessity", _fmt(probes.necessity.rate))
    if probes.controls is not None:
        c = probes.controls
        table.add_row(
            "accuracy: full / no / filler chain",
            f"{_num(c.full_cot_accuracy)} / {_num(c.no_cot_accuracy)} / "
            f"{_num(c.filler_cot_accuracy)}",
        )


def _judge_rows(report: Report, table: Table) -> None:
    judge = report.judge
    if judge is None:
        return
    j = judge.summary
    table.add_row("judge: aligned share of correct", _fmt(j.aligned_share_of_correct))
    table.add_row("judge: correct but misaligned", _fmt(j.correct_but_misaligned_rate))
    table.add_row("judge: errors (no valid verdict)", f"{j.errors} / {j.responses}")
    rel = judge.reliability
    if rel is not None:
        state = "reliable" if rel.reliable else "UNRELIABLE"
        table.add_row("judge: calibration AUROC · kappa", f"{_num(rel.auroc)} · {_num(rel.kappa)}")
        table.add_row("judge: on calibration pairs", f"{state} ({rel.n_items} items)")
    if judge.jury is not None:
        _jury_rows(judge.jury, table)


def _jury_rows(jury: JuryReport, table: Table) -> None:
    """Each judge of a jury, their agreement, and whether the verdict uses the jury."""
    for member in jury.judges:
        r = member.reliability
        state = "uncalibrated" if r is None else "reliable" if r.reliable else "UNRELIABLE"
        on_cal = "" if r is None else f", AUROC {_num(r.auroc)} · kappa {_num(r.kappa)}"
        table.add_row(
            f"judge {member.name}",
            f"aligned of correct {_num(member.summary.aligned_share_of_correct)}, {state}{on_cal}",
        )
    a = jury.agreement
    table.add_row(
        "jury: Fleiss kappa · disagreement",
        f"{_fmt(a.fleiss_kappa)} · {_fmt(a.disagreement_rate)} ({a.items} responses)",
    )
    for pair in a.pairwise_kappa:
        table.add_row(f"jury: Cohen kappa {pair.judges[0]} · {pair.judges[1]}", _fmt(pair.kappa))
    used = f"{len(jury.reliable)} of {len(jury.judges)} reliable, needs {jury.quorum}"
    table.add_row("jury: label used by the verdict", ("yes" if jury.used else "NO") + f" ({used})")


def _diversity_rows(report: Report, table: Table) -> None:
    d = report.diversity
    if d is None:
        return
    table.add_row("diversity (contrast): distinct-2", _fmt(d.distinct_2))
    if d.vendi is not None:
        table.add_row("diversity (contrast): Vendi", _fmt(d.vendi))
    if d.strategy_diversity is not None:
        table.add_row("diversity (contrast): strategy", _fmt(d.strategy_diversity))


def _num(m: MetricValue) -> str:
    return "n/a" if m.value is None else f"{m.value:.3f}"
