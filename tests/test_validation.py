"""Calibration validation runs: the verdict rules, and ``glassdepth calib validate`` end to end on
drifted copies of the demo capture (and on the shared EuRoC sequence when present)."""

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from calibration.drift import perturb_capture
from calibration.validation import CSV_COLUMNS, OUTPUT_FILES, judge_drift, list_captures
from sensing.capture import load_capture, save_capture
from sensing.cli import EXIT_INPUT, EXIT_OK, main
from sensing.config import ValidationConfig
from sensing.demo_capture import build_demo_capture
from sensing.errors import InputError

EXIT_DRIFTED, EXIT_INCONSISTENT = 4, 5
SETTINGS = ValidationConfig(hold_deg=0.05, hold_yaw_deg=0.1, consistency_deg=0.05, min_reliable_fraction=0.5)


# --- the verdict rules --------------------------------------------------------------------------


def test_small_consistent_drifts_hold() -> None:
    verdict = judge_drift([[0.01, 0.0, -0.02], [0.02, 0.0, -0.01], [0.0, 0.0, -0.015]], [False] * 3, 3, SETTINGS)
    assert verdict.verdict == "holds" and verdict.message == "calibration holds"
    assert verdict.median_deg == [0.01, None, -0.015]
    assert verdict.spread_deg[1] is None and verdict.reasons == []
    assert (verdict.captures, verdict.reliable, verdict.yaw_observed) == (3, 3, 0)


def test_consistent_drift_beyond_hold_needs_recalibration() -> None:
    verdict = judge_drift([[0.5, 0.0, -0.3], [0.51, 0.0, -0.31], [0.49, 0.0, -0.29]], [False] * 3, 4, SETTINGS)
    assert verdict.verdict == "drifted" and verdict.message == "drifted — recalibrate"
    assert verdict.median_deg == [0.5, None, -0.3]
    assert verdict.spread_deg[0] == pytest.approx(1.4826 * 0.01, abs=1e-5)
    assert len(verdict.reasons) == 2 and "pitch" in verdict.reasons[0] and "roll" in verdict.reasons[1]


def test_yaw_has_its_own_wider_hold_band() -> None:
    verdict = judge_drift([[0.0, 0.07, 0.0], [0.0, 0.06, 0.0], [0.0, 0.08, 0.0]], [True] * 3, 3, SETTINGS)
    assert verdict.verdict == "holds"
    verdict = judge_drift([[0.0, 0.12, 0.0], [0.0, 0.11, 0.0], [0.0, 0.13, 0.0]], [True] * 3, 3, SETTINGS)
    assert verdict.verdict == "drifted" and "yaw" in verdict.reasons[0] and "0.1 deg" in verdict.reasons[0]


def test_yaw_counts_only_where_observed() -> None:
    # Yaw of 0.3 deg where observed; the unobserved captures' zero yaw must not pull the median down.
    verdict = judge_drift([[0.0, 0.3, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [True, False, False], 3, SETTINGS)
    assert verdict.verdict == "drifted" and verdict.median_deg[1] == pytest.approx(0.3)
    assert verdict.yaw_observed == 1 and "yaw" in verdict.reasons[0]


def test_disagreeing_captures_are_inconsistent() -> None:
    verdict = judge_drift([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], [False] * 3, 3, SETTINGS)
    assert verdict.verdict == "inconsistent" and verdict.message == "inconsistent between captures"
    assert verdict.spread_deg[0] == pytest.approx(1.4826)
    assert "disagree on pitch" in verdict.reasons[0]


def test_too_few_reliable_captures_are_inconsistent() -> None:
    verdict = judge_drift([[0.0, 0.0, 0.0]], [False], 3, SETTINGS)
    assert verdict.verdict == "inconsistent" and "only 1 of 3" in verdict.reasons[0]
    assert judge_drift([], [], 2, SETTINGS).reasons == ["none of the 2 captures gave a reliable drift estimate"]
    # Inconsistency wins over a drift beyond hold_deg.
    assert judge_drift([[1.0, 0.0, 0.0]], [False], 3, SETTINGS).verdict == "inconsistent"


# --- end to end through the CLI -----------------------------------------------------------------


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> dict[str, Path]:
    """Capture folders: the demo capture undrifted, drifted by pitch 0.5 / roll -0.3, by ±1 deg
    pitch (three copies each where a scenario needs three, timestamps one second apart), and black."""
    root = tmp_path_factory.mktemp("validation")
    base = load_capture(build_demo_capture(root / "base"))
    start_ns = base.meta["timestamp_ns"]
    folders: dict[str, Path] = {}

    def save(name: str, capture, index: int) -> None:
        capture = replace(capture, meta={**capture.meta, "timestamp_ns": start_ns + index * 1_000_000_000})
        folders[name] = save_capture(capture, root / name)

    drifted = perturb_capture(base, [0.5, 0.0, -0.3])
    for index in range(3):
        save(f"still_{index}", base, index)
        save(f"drifted_{index}", drifted, index)
    save("pitch_up", perturb_capture(base, [1.0, 0.0, 0.0]), 1)
    save("pitch_down", perturb_capture(base, [-1.0, 0.0, 0.0]), 2)
    save("black", replace(base, right=np.zeros_like(base.right)), 3)
    return folders


def _validate(folders: list[Path], out: Path) -> tuple[int, dict]:
    code = main(["calib", "validate", *map(str, folders), "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    return code, summary


def test_consistent_drift_exits_4_with_the_median_and_a_corrected_calibration(captures, tmp_path, capsys) -> None:
    code, summary = _validate([captures[f"drifted_{i}"] for i in range(3)], tmp_path / "out")
    assert code == EXIT_DRIFTED and summary["verdict"] == "drifted"
    # Relative to the undrifted demo capture, which has a few hundredths of a degree of its own.
    _, still = _validate([captures[f"still_{i}"] for i in range(3)], tmp_path / "still")
    assert summary["median_deg"][0] - still["median_deg"][0] == pytest.approx(0.5, abs=0.02)
    assert summary["median_deg"][2] - still["median_deg"][2] == pytest.approx(-0.3, abs=0.02)
    assert [record["verdict"] for record in summary["records"]] == ["reliable"] * 3
    assert [record["timestamp_s"] for record in summary["records"]] == [0.0, 1.0, 2.0]
    assert (summary["captures"], summary["reliable"]) == (3, 3)
    corrected = np.array(summary["calibration_corrected"]["R"])
    assert np.degrees(np.arccos((np.trace(corrected) - 1) / 2)) == pytest.approx(np.hypot(0.5, 0.3), abs=0.03)
    assert "git_revision" in summary and summary["config"]["rectification"]["online"] is True
    assert "drifted — recalibrate" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUT_FILES)
    assert (tmp_path / "out" / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "out" / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and tuple(rows[0]) == CSV_COLUMNS
    assert float(rows[0]["pitch_deg"]) == pytest.approx(0.5, abs=0.02)


def test_undrifted_captures_hold(captures, tmp_path) -> None:
    code, summary = _validate([captures[f"still_{i}"] for i in range(3)], tmp_path / "out")
    assert code == EXIT_OK and summary["verdict"] == "holds" and summary["calibration_corrected"] is None


def test_disagreeing_captures_exit_5(captures, tmp_path) -> None:
    code, summary = _validate([captures["still_0"], captures["pitch_up"], captures["pitch_down"]], tmp_path / "out")
    assert code == EXIT_INCONSISTENT and summary["verdict"] == "inconsistent"
    assert summary["spread_deg"][0] > 0.5


def test_a_folder_of_captures_records_a_black_frame_as_stopped(captures, tmp_path) -> None:
    folder = tmp_path / "session"
    for name in ("still_0", "still_1", "black"):
        (folder / name).mkdir(parents=True)
        for file in captures[name].iterdir():
            (folder / name / file.name).write_bytes(file.read_bytes())
    (folder / "notes").mkdir()  # not a capture: skipped
    code, summary = _validate([folder], tmp_path / "out")
    records = {record["name"]: record for record in summary["records"]}
    assert sorted(records) == ["black", "still_0", "still_1"]
    assert records["black"]["verdict"] == "stopped" and "black" in records["black"]["reasons"][0]
    assert records["black"]["drift_deg"] is None
    assert code == EXIT_OK and (summary["captures"], summary["reliable"]) == (3, 2)
    with open(tmp_path / "out" / "summary.csv", newline="") as handle:
        assert [row["verdict"] for row in csv.DictReader(handle)] == ["stopped", "reliable", "reliable"]


def test_an_unloadable_capture_is_recorded_as_stopped(captures, tmp_path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "calibration.json").write_text("{}")
    code, summary = _validate([captures["still_0"], broken], tmp_path / "out")
    assert summary["records"][1]["verdict"] == "stopped"
    assert summary["records"][1]["reasons"][0].startswith("cannot load: ")
    assert code == EXIT_OK  # one reliable of two meets min_reliable_fraction 0.5


def test_missing_or_empty_input_exits_2_and_writes_nothing(tmp_path, capsys) -> None:
    assert main(["calib", "validate", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == EXIT_INPUT
    assert "capture not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no captures found"):
        list_captures([tmp_path / "empty"])
    assert not (tmp_path / "out").exists()


@pytest.mark.shared_data
def test_euroc_sequence_gives_one_record_per_frame(euroc_mav0, tmp_path) -> None:
    # The sequence folder (../shared/data/captures/euroc_V1_01_easy): every frame pair is a capture.
    code, summary = _validate([euroc_mav0.parent], tmp_path / "out")
    assert code in (EXIT_OK, EXIT_DRIFTED, EXIT_INCONSISTENT)
    assert summary["verdict"] in ("holds", "drifted", "inconsistent")
    assert len(summary["records"]) == 5
    assert [record["timestamp_s"] for record in summary["records"]] == pytest.approx([0, 1, 2, 3, 4], abs=0.01)


def test_config_sets_the_verdict_thresholds(captures, tmp_path) -> None:
    config = tmp_path / "lenient.yaml"
    config.write_text("validation:\n  hold_deg: 1.0\n")
    out = tmp_path / "out"
    arguments = ["calib", "validate", *(str(captures[f"drifted_{i}"]) for i in range(3)), "--out", str(out)]
    assert main([*arguments, "--config", str(config), "--device", "cpu-2core"]) == EXIT_OK
    assert json.loads((out / "summary.json").read_text())["config"]["validation"]["hold_deg"] == 1.0
