"""Reading training logs for `saturation`: formats, column detection, clear errors, the
TensorBoard event reader (cross-checked against the protobuf library), and the bundled
realistic sample logs."""

from __future__ import annotations

import json
import math
import random
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from faithcheck.errors import DataError
from faithcheck.saturation.core import SaturationSettings, analyze_run
from faithcheck.saturation.logs import load_run, read_table
from faithcheck.saturation.tfevents import (
    CRC_IMPLEMENTATION,
    crc32c,
    crc32c_python,
    encode_scalar_event,
    frame,
    read_scalar_rows,
    records,
    write_scalars,
)
from tests.conftest import await_wandb_flush

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "logs"


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def ramp_rows(key: str = "reward", n: int = 200, k: int = 80) -> list[dict]:
    return [{"step": s, key: min(1.0, s / k), "loss": 0.1} for s in range(1, n + 1)]


# --- formats ----------------------------------------------------------------------------------


def test_trl_jsonl_with_eval_rows(tmp_path: Path) -> None:
    rows = ramp_rows()
    rows += [{"step": s, "eval_reward": 0.3 + s / 1000, "eval_loss": 1.0} for s in (0, 100, 200)]
    run = load_run(jsonl(tmp_path / "trl.jsonl", rows))
    assert (run.step_column, run.reward_column, run.eval_column) == (
        "step",
        "reward",
        "eval_reward",
    )
    assert len(run.reward_points) == 200 and len(run.eval_points) == 3
    assert run.dropped_rows == 0  # eval-only rows are not "dropped"
    record = analyze_run(run, SaturationSettings())[0]
    assert record.t_sat == 80 and record.eval is not None
    assert record.eval.at_tsat_step == 100


def test_verl_file_logger_nesting(tmp_path: Path) -> None:
    val = "val-core/openai/gsm8k/reward/mean@1"
    rows: list[dict] = [{"step": 0, "data": {val: 0.4}}]
    rows += [
        {"step": s, "data": {"critic/score/mean": min(1.0, s / 80), "training/global_step": s}}
        for s in range(1, 201)
    ]
    run = load_run(jsonl(tmp_path / "verl.jsonl", rows))
    assert (run.step_column, run.reward_column, run.eval_column) == (
        "step",
        "critic/score/mean",
        val,
    )


def test_nested_dicts_flatten_with_slashes(tmp_path: Path) -> None:
    rows = [{"trainer": {"global_step": s}, "train": {"reward": s / 10}} for s in range(1, 5)]
    table = read_table(jsonl(tmp_path / "n.jsonl", rows))
    assert set(table.columns) == {"trainer/global_step", "train/reward"}
    run = load_run(tmp_path / "n.jsonl")
    assert (run.step_column, run.reward_column) == ("trainer/global_step", "train/reward")


def test_trainer_state_json_with_nan_tokens(tmp_path: Path) -> None:
    history = ramp_rows(n=200)
    history[5]["reward"] = math.nan  # Python's json writes NaN; orjson alone would refuse it
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps({"global_step": 200, "log_history": history}))
    run = load_run(path)
    record = analyze_run(run, SaturationSettings())[0]
    assert record.dropped_rows == 1 and record.t_sat == 80
    assert load_run(tmp_path).path.endswith("trainer_state.json")  # a checkpoint folder


def test_json_list(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps(ramp_rows(n=10)))
    assert len(load_run(path).reward_points) == 10


def test_wandb_chart_export_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    lines = ["Step,run1 - train/reward,run1 - train/reward__MIN,run1 - train/reward__MAX"]
    lines += [f"{s},{min(1, s / 80)},0,1" for s in range(1, 201)]
    path.write_text("\n".join(lines) + "\n")
    run = load_run(path)
    assert (run.step_column, run.reward_column) == ("Step", "run1 - train/reward")
    assert run.eval_column is None


def test_tsv_and_blank_cells(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    lines = ["_step\ttrain/reward\teval/accuracy"]
    lines += [f"{s}\t{min(1, s / 80)}\t{0.5 if s % 50 == 0 else ''}" for s in range(1, 201)]
    path.write_text("\n".join(lines) + "\n")
    run = load_run(path)
    assert run.step_column == "_step" and run.eval_column == "eval/accuracy"
    assert len(run.eval_points) == 4


def test_tensorboard_csv_download(tmp_path: Path) -> None:
    path = tmp_path / "run-train-tag-reward.csv"
    rows = [f"1700000000.{s},{s},{min(1, s / 80)}" for s in range(1, 201)]
    path.write_text("Wall time,Step,Value\n" + "\n".join(rows) + "\n")
    assert load_run(path).reward_column == "Value"


def test_fallback_to_a_lone_reward_like_column(tmp_path: Path) -> None:
    rows = [{"step": s, "my_custom_reward": s, "my_custom_reward_std": 1} for s in range(5)]
    assert load_run(jsonl(tmp_path / "x.jsonl", rows)).reward_column == "my_custom_reward"


def test_named_columns_and_no_eval(tmp_path: Path) -> None:
    rows = [{"it": s, "r": s / 10, "acc": s / 20, "eval_reward": 1} for s in range(1, 20)]
    path = jsonl(tmp_path / "x.jsonl", rows)
    run = load_run(path, step="it", reward="r", eval_col="acc")
    assert (run.step_column, run.reward_column, run.eval_column) == ("it", "r", "acc")
    assert load_run(path, step="it", reward="r", detect_eval=False).eval_column is None
    assert load_run(path, step="IT", reward="R").step_column == "it"  # case-insensitive


def test_several_eval_candidates_are_not_guessed(tmp_path: Path) -> None:
    rows = [
        {"step": s, "reward": s, "val/test_score/gsm8k": 0.1, "val/test_score/math": 0.2}
        for s in range(5)
    ]
    run = load_run(jsonl(tmp_path / "x.jsonl", rows))
    assert run.eval_column is None
    assert any("several eval columns" in n for n in run.notes)


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "live.jsonl", ramp_rows(n=10))
    with path.open("a") as fh:
        fh.write('{"step": 11, "rew')
    run = load_run(path)
    assert len(run.reward_points) == 10
    assert any("torn" in n for n in run.notes)


def test_reward_row_without_step_is_counted(tmp_path: Path) -> None:
    rows = [*ramp_rows(n=10), {"reward": 0.5}, {"step": None, "reward": 0.2}]
    assert load_run(jsonl(tmp_path / "x.jsonl", rows)).dropped_rows == 2


def test_text_reward_values_become_dropped_rows(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("step,reward\n1,0.1\n2,oops\n3,nan\n4,0.4\n")
    record = analyze_run(load_run(path), SaturationSettings())[0]
    assert record.dropped_rows == 2 and record.points == 2


# --- errors -----------------------------------------------------------------------------------

ERRORS = [
    pytest.param("x.jsonl", "", None, "no rows", id="empty"),
    pytest.param("x.jsonl", '{"step": 1}\n{oops\n{"step": 2}\n', None, "x.jsonl:2", id="bad-line"),
    pytest.param("x.jsonl", "[1, 2]\n", None, "JSON object per line", id="not-objects"),
    pytest.param("x.json", '{"a": 1}', None, "log_history", id="json-shape"),
    pytest.param("x.csv", "", None, "empty CSV", id="empty-csv"),
    pytest.param(
        "x.jsonl",
        '{"step": 1, "loss": 2, "lr": 3}\n',
        None,
        "columns seen: step, loss, lr",
        id="no-reward",
    ),
    pytest.param("x.jsonl", '{"reward": 1, "loss": 2}\n', None, "--step-col", id="no-step"),
    pytest.param(
        "x.jsonl",
        '{"step": 1, "reward": 1}\n',
        {"reward": "score"},
        "no column 'score'",
        id="named-missing",
    ),
    pytest.param(
        "x.jsonl",
        '{"epoch": 0.5, "reward": 1}\n',
        {"step": "epoch"},
        "non-integer",
        id="fractional-step",
    ),
    pytest.param(
        "x.csv",
        "Step,a - train/reward,b - train/reward\n1,2,3\n",
        None,
        "several columns",
        id="two-runs-one-csv",
    ),
    pytest.param("x.jsonl", '{"step": 1, "reward": null}\n', None, "has no values", id="no-val"),
]


@pytest.mark.parametrize(("name", "text", "kw", "needle"), ERRORS)
def test_errors_are_clear(tmp_path: Path, name: str, text: str, kw: dict | None, needle) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError) as info:
        load_run(path, **(kw or {}))
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_path_and_plain_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_run(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="without TensorBoard event files or a wandb run"):
        load_run(tmp_path)


# --- TensorBoard ------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [crc32c, crc32c_python], ids=["selected", "python"])
def test_crc32c_known_vectors(fn: Any) -> None:
    assert fn(b"123456789") == 0xE3069283
    assert fn(b"") == 0
    assert fn(b"\x00" * 32) == 0x8A9136AA


def test_native_crc32c_is_used_and_agrees_with_the_python_one() -> None:
    pytest.importorskip("google_crc32c")  # a dependency: installed wherever faithcheck is
    assert CRC_IMPLEMENTATION in ("google-crc32c", "crc32c")
    rng = random.Random(7)
    for size in (1, 7, 64, 1000, 4099):
        data = rng.randbytes(size)
        assert crc32c(data) == crc32c_python(data)


def test_event_file_is_streamed_not_read_whole(tmp_path: Path) -> None:
    """A 24 MiB event file of large non-scalar records is read with a small peak of memory:
    one record (1 MiB) and the read buffer at a time, never the whole file."""
    big = 1 << 20
    blob = frame(_key_bytes_event(b"x" * big))
    path = tmp_path / "events.out.tfevents.1.host"
    with path.open("wb") as fh:
        fh.write(frame(encode_scalar_event(1, "train/reward", 0.5, wall_time=1.0, tf2=False)))
        for _ in range(24):
            fh.write(blob)
        fh.write(frame(encode_scalar_event(2, "train/reward", 0.75, wall_time=2.0, tf2=False)))
    tracemalloc.start()
    try:
        rows, notes = read_scalar_rows([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == [{"step": 1, "train/reward": 0.5}, {"step": 2, "train/reward": 0.75}]
    assert notes == []
    assert peak < 6 * big, f"peak {peak / big:.1f} MiB for a 24 MiB file"


def _key_bytes_event(text: bytes) -> bytes:
    """An Event whose only content is a large file_version string (field 3): no scalars."""
    size, length = len(text), bytearray()
    while True:
        length.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            return bytes([3 << 3 | 2]) + bytes(length) + text


@pytest.mark.parametrize("tf2", [False, True], ids=["simple_value", "tf2-tensor"])
def test_event_file_round_trip(tmp_path: Path, tf2: bool) -> None:
    scalars = [(s, "train/reward", min(1.0, s / 80)) for s in range(1, 201)]
    scalars += [(s, "eval/accuracy", 0.25 + s / 1000) for s in range(0, 201, 50)]
    write_scalars(tmp_path / "tb" / "events.out.tfevents.1.host", scalars, tf2=tf2)
    run = load_run(tmp_path / "tb")
    assert (run.reward_column, run.eval_column) == ("train/reward", "eval/accuracy")
    assert run.reward_points[79] == (80, 1.0)
    assert analyze_run(run, SaturationSettings())[0].t_sat == 80


def test_event_file_torn_tail_and_corruption(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.2.host"
    write_scalars(path, [(s, "reward", s / 10) for s in range(1, 6)])
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # a writer killed mid-record
    rows, notes = read_scalar_rows([path])
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and notes
    corrupt = bytearray(data)
    corrupt[-6] ^= 0xFF  # inside the last payload
    path.write_bytes(bytes(corrupt))
    with pytest.raises(DataError, match="CRC"):
        read_scalar_rows([path])
    path.write_bytes(b"step,reward\n1,2\n" * 4)
    with pytest.raises(DataError, match="not a TensorBoard event file"):
        read_scalar_rows([path])


def test_several_tensorboard_runs_get_folder_prefixes(tmp_path: Path) -> None:
    write_scalars(tmp_path / "a" / "events.out.tfevents.1", [(1, "train/reward", 0.5)])
    write_scalars(tmp_path / "b" / "events.out.tfevents.1", [(1, "train/reward", 0.75)])
    table = read_table(tmp_path)
    assert sorted(table.columns) == ["a/train/reward", "b/train/reward", "step"]
    with pytest.raises(DataError, match="no reward column"):
        load_run(tmp_path)
    assert load_run(tmp_path, reward="b/train/reward").reward_points == [(1, 0.75)]


def _event_classes():
    """Event and friends as real protobuf classes (wire-compatible subset of TensorFlow's)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="fc_tb_test.proto", package="fct")

    def message(name: str, *fields: tuple) -> None:
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, label, extra in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if isinstance(extra, str):
                f.type_name = extra
            elif extra:
                f.options.packed = True

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("Dim", ("size", 1, F.TYPE_INT64, opt, None))
    message("Shape", ("dim", 2, F.TYPE_MESSAGE, rep, ".fct.Dim"))
    message(
        "Tensor",
        ("dtype", 1, F.TYPE_INT32, opt, None),
        ("tensor_shape", 2, F.TYPE_MESSAGE, opt, ".fct.Shape"),
        ("tensor_content", 4, F.TYPE_BYTES, opt, None),
        ("float_val", 5, F.TYPE_FLOAT, rep, True),
        ("double_val", 6, F.TYPE_DOUBLE, rep, False),
        ("string_val", 8, F.TYPE_BYTES, rep, None),
        ("int64_val", 10, F.TYPE_INT64, rep, True),
    )
    message("PluginData", ("plugin_name", 1, F.TYPE_STRING, opt, None))
    message("Meta", ("plugin_data", 1, F.TYPE_MESSAGE, opt, ".fct.PluginData"))
    message(
        "Value",
        ("tag", 1, F.TYPE_STRING, opt, None),
        ("simple_value", 2, F.TYPE_FLOAT, opt, None),
        ("tensor", 8, F.TYPE_MESSAGE, opt, ".fct.Tensor"),
        ("metadata", 9, F.TYPE_MESSAGE, opt, ".fct.Meta"),
    )
    message("Summary", ("value", 1, F.TYPE_MESSAGE, rep, ".fct.Value"))
    message(
        "Event",
        ("wall_time", 1, F.TYPE_DOUBLE, opt, None),
        ("step", 2, F.TYPE_INT64, opt, None),
        ("file_version", 3, F.TYPE_STRING, opt, None),
        ("summary", 5, F.TYPE_MESSAGE, opt, ".fct.Summary"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"fct.{n}"))
        for n in ("Event", "Value", "Tensor")
    }


def test_reader_matches_protobuf_serialization(tmp_path: Path) -> None:
    cls = _event_classes()
    Event = cls["Event"]
    events = []
    e = Event(wall_time=1.5, step=3)
    e.summary.value.add(tag="train/reward", simple_value=0.0)  # zero must survive
    events.append(e)
    e = Event(wall_time=2.0, step=2**40)
    v = e.summary.value.add(tag="tf2/reward")
    v.metadata.plugin_data.plugin_name = "scalars"
    v.tensor.dtype = 1
    v.tensor.float_val.append(0.75)
    events.append(e)
    e = Event(step=5)  # tensor_content, double, with a one-element shape
    v = e.summary.value.add(tag="dbl")
    v.tensor.dtype = 2
    v.tensor.tensor_shape.dim.add(size=1)
    v.tensor.tensor_content = struct.pack("<d", 0.125)
    events.append(e)
    e = Event(step=6)  # unpacked double_val, int64 (dtype 9) packed
    e.summary.value.add(tag="d2").tensor.double_val.append(0.5)
    e.summary.value[0].tensor.dtype = 2
    i64 = e.summary.value.add(tag="i64")
    i64.tensor.dtype = 9
    i64.tensor.int64_val.append(-7)
    events.append(e)
    e = Event(step=7)  # skipped: histogram-like tensor, string tensor, other plugin
    hist = e.summary.value.add(tag="hist").tensor
    hist.dtype = 1
    hist.tensor_shape.dim.add(size=2)
    hist.float_val.extend([1.0, 2.0])
    text = e.summary.value.add(tag="text").tensor
    text.dtype = 7
    text.string_val.append(b"hello")
    other = e.summary.value.add(tag="pr", simple_value=1.0)
    other.metadata.plugin_data.plugin_name = "pr_curves"
    events.append(e)
    path = tmp_path / "events.out.tfevents.9"
    path.write_bytes(
        frame(Event(file_version="brain.Event:2").SerializeToString())
        + b"".join(frame(ev.SerializeToString()) for ev in events)
    )
    rows, _ = read_scalar_rows([path])
    assert rows == [
        {"step": 3, "train/reward": 0.0},
        {"step": 2**40, "tf2/reward": 0.75},
        {"step": 5, "dbl": 0.125},
        {"step": 6, "d2": 0.5},
        {"step": 6, "i64": -7.0},
    ]


@pytest.mark.parametrize("tf2", [False, True])
def test_protobuf_parses_our_encoder(tf2: bool) -> None:
    Event = _event_classes()["Event"]
    event = Event.FromString(encode_scalar_event(123, "train/reward", 0.5, wall_time=9.0, tf2=tf2))
    assert (event.step, event.wall_time) == (123, 9.0)
    value = event.summary.value[0]
    assert value.tag == "train/reward"
    got = value.tensor.float_val[0] if tf2 else value.simple_value
    assert got == 0.5
    payloads, torn = records(frame(event.SerializeToString()))
    assert payloads == [event.SerializeToString()] and not torn


# --- wandb local run folders -----------------------------------------------------------------


def _wandb_run(folder: Path, steps: int, *, name: str = "grpo") -> Path:
    """A real wandb offline run: GRPO-style reward saturating at step 80, nested eval dicts,
    a string column, enough rows that records cross the log's 32 KiB blocks."""
    import wandb

    run = wandb.init(mode="offline", dir=str(folder), project="rl", name=name)
    path = Path(run.dir).parent
    try:
        for s in range(1, steps + 1):
            row = {"train/reward": min(1.0, s / 80), "train/loss": 1 / s, "note": "x" * (s % 40)}
            if s % 50 == 0:
                row["eval"] = {"accuracy": 0.25 + s / 1000}
            run.log(row, step=s)
    finally:
        run.finish()
    await_wandb_flush(path)
    return path


def test_wandb_run_folder_reads_as_logged(wandb_offline_env: Path) -> None:
    folder = _wandb_run(wandb_offline_env, 1200)
    (log,) = folder.glob("*.wandb")
    assert log.stat().st_size > 4 * 32 * 1024  # several blocks
    for path in (folder, folder.parent, log):  # run folder, wandb/ (one run), the file
        run = load_run(path)
        assert run.format == "wandb"
        assert (run.step_column, run.reward_column) == ("_step", "train/reward")
        assert run.eval_column == "eval/accuracy"
        assert run.reward_points == [(s, min(1.0, s / 80)) for s in range(1, 1201)]
        assert run.eval_points[0] == (50, pytest.approx(0.3))
        assert analyze_run(run, SaturationSettings())[0].t_sat == 80


def test_wandb_torn_tail_corruption_and_choices(wandb_offline_env: Path) -> None:
    folder = _wandb_run(wandb_offline_env, 30)
    (log,) = folder.glob("*.wandb")
    data = log.read_bytes()
    full = read_table(folder)
    log.write_bytes(data[:-20])  # a run killed mid-record
    torn = read_table(folder)
    assert len(torn.rows) <= len(full.rows) and torn.notes
    assert "partial last record" in torn.notes[0]
    cut = data.index(b"train/reward", len(data) // 2)
    log.write_bytes(data[:cut] + b"\x00" + data[cut + 1 :])
    with pytest.raises(DataError, match="CRC mismatch"):
        read_table(folder)
    log.write_bytes(b"step,reward\n1,2\n")
    with pytest.raises(DataError, match="not a wandb run file"):
        read_table(log)
    log.write_bytes(data)
    _wandb_run(wandb_offline_env, 5, name="second")
    (wandb_offline_env / "wandb" / "latest-run").unlink()
    with pytest.raises(DataError, match=r"2 wandb runs .*pass one run folder"):
        read_table(wandb_offline_env / "wandb")


# --- the bundled realistic logs ---------------------------------------------------------------

SAMPLE_EXPECTED = [
    # (path, format, reward column, eval column, t_sat, rapid). The level is measured from each
    # run's first reward (#28); under the study's epsilon*max (--floor zero) the t_sat of the
    # slow TRL and verl runs were 261 and 300, and 55 for the rapid verl run, same verdicts.
    ("trl_grpo_rapid.jsonl", "jsonl", "reward", "eval_reward", 36, True),
    ("trl_grpo_slow.jsonl", "jsonl", "reward", "eval_reward", 280, False),
    (
        "verl_grpo_rapid.jsonl",
        "jsonl",
        "critic/score/mean",
        "val-core/openai/gsm8k/reward/mean@1",
        58,
        True,
    ),
    (
        "verl_grpo_slow.jsonl",
        "jsonl",
        "critic/score/mean",
        "val-core/openai/gsm8k/reward/mean@1",
        331,
        False,
    ),
    (
        "wandb_export_slow.csv",
        "csv",
        "qwen2.5-math-1.5b-grpo - train/reward",
        "qwen2.5-math-1.5b-grpo - eval/accuracy",
        329,
        False,
    ),
    ("openrlhf_tb_rapid", "tensorboard", "train/reward", "eval/gsm8k_pass1", 50, True),
]


@pytest.mark.parametrize(("name", "fmt", "reward", "evalc", "t_sat", "rapid"), SAMPLE_EXPECTED)
def test_sample_logs(name, fmt, reward, evalc, t_sat, rapid) -> None:
    record = analyze_run(load_run(SAMPLES / name), SaturationSettings())[0]
    assert (record.format, record.reward_column) == (fmt, reward)
    assert record.eval is not None and record.eval.column == evalc
    assert (record.t_sat, record.rapid) == (t_sat, rapid)
    gain = record.eval.pre_saturation_gain
    assert gain is not None and (gain < 0.1 if rapid else gain > 0.2)


def test_sample_logs_keep_their_verdict_when_smoothed() -> None:
    for name, *_, rapid in SAMPLE_EXPECTED:
        record = analyze_run(load_run(SAMPLES / name), SaturationSettings(ema=0.9))[0]
        assert record.rapid is rapid, name


def test_make_logs_reproduces_the_committed_samples(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_logs", SAMPLES / "make_logs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.write_all(tmp_path):
        committed = SAMPLES / path.relative_to(tmp_path)
        assert path.read_bytes() == committed.read_bytes(), committed
