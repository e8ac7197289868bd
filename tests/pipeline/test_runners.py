"""The stage runners (`faithcheck.pipeline.runners`): each declares the stages it runs, and
`LAYOUT` is their declarations in run order."""

from __future__ import annotations

import pytest

from faithcheck.pipeline.options import ScoreOptions
from faithcheck.pipeline.runners import LAYOUT, RUNNERS, DiversityRunner, Runner, stage_runners
from faithcheck.store.layout import Stage, StageFile


def test_the_layout_is_the_runners_declarations_in_run_order() -> None:
    assert LAYOUT.stages == tuple(stage for kind in RUNNERS for stage in kind.stages)
    assert [kind.name() for kind in RUNNERS] == [
        "samples",
        "probes",
        "judge",
        "checks",
        "diversity",
    ]


def test_the_stages_on_the_engines_come_before_those_on_the_records() -> None:
    """`run_stages` closes every engine before the first stage that needs none."""
    flags = [kind.engines for kind in RUNNERS]
    assert flags == sorted(flags, reverse=True)


def test_only_the_stages_on_the_records_write_derived_files() -> None:
    """A rebuild runs only the runners that need no engine: they must be the ones whose
    files are derived (computed again from the records), and only those."""
    for kind in RUNNERS:
        derived = {not f.appended for stage in kind.stages for f in stage.files}
        assert derived == {not kind.engines}, kind


def test_a_rebuild_runs_the_derived_stages_with_their_own_options() -> None:
    opts = ScoreOptions(model="m", diversity=False)
    runners = stage_runners(opts, engines=False)
    assert [type(r) for r in runners] == [kind for kind in RUNNERS if not kind.engines]
    assert DiversityRunner(opts.diversity) in runners


def test_a_runner_that_declares_no_stage_is_refused() -> None:
    with pytest.raises(TypeError, match="Nowhere declares no stage"):

        class Nowhere(Runner):
            pass


def test_a_runner_on_the_records_that_appends_records_is_refused() -> None:
    """A rebuild would run it, and append its records a second time."""
    appended = Stage("x", (StageFile("x.jsonl", "problem", ("problem_id",)),), after=None)
    with pytest.raises(TypeError, match="Appends must write derived files only"):

        class Appends(Runner):
            stages = (appended,)
