"""The stage runners (`faithcheck.pipeline.runners`) and the stage declarations
(`faithcheck.store.stages`) describe the same stages, in the same order."""

from __future__ import annotations

import pytest

from faithcheck.pipeline.options import ScoreOptions
from faithcheck.pipeline.runners import RUNNERS, DiversityRunner, Runner, stage_runners
from faithcheck.store.stages import STAGES


def test_every_declared_stage_with_files_has_a_runner_in_the_declared_order() -> None:
    declared = [s.name for s in STAGES if s.files]
    run = [stage.name for kind in RUNNERS for stage in kind.stages()]
    assert run == declared


def test_the_stages_on_the_engines_come_before_those_on_the_records() -> None:
    """`run_stages` closes every engine before the first stage that needs none."""
    flags = [kind.engines for kind in RUNNERS]
    assert flags == sorted(flags, reverse=True)


def test_only_the_stages_on_the_records_write_derived_files() -> None:
    """A rebuild runs only the runners that need no engine: they must be the ones whose
    files are derived (computed again from the records), and only those."""
    for kind in RUNNERS:
        derived = {not f.appended for stage in kind.stages() for f in stage.files}
        assert derived == {not kind.engines}, kind


def test_a_rebuild_runs_the_derived_stages_with_their_own_options() -> None:
    opts = ScoreOptions(model="m", diversity=False)
    runners = stage_runners(opts, engines=False)
    assert [type(r) for r in runners] == [kind for kind in RUNNERS if not kind.engines]
    assert DiversityRunner(opts.diversity) in runners


def test_a_runner_of_no_declared_stage_is_refused() -> None:
    with pytest.raises(TypeError, match="'nowhere', a stage STAGES lacks"):

        class Nowhere(Runner):
            name = "nowhere"
