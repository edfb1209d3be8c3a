"""Pipeline settings: shipped defaults, overrides, errors naming the key; device profiles."""

from pathlib import Path

import pytest
import yaml

from sensing.config import (
    CONFIG_DIR,
    PipelineConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    load_device_profile,
)
from sensing.errors import ConfigError

DEFAULT_YAML = CONFIG_DIR / "default.yaml"


def test_default_yaml_spells_out_exactly_the_defaults() -> None:
    assert load_config(DEFAULT_YAML) == PipelineConfig() == load_config(None)
    # Every setting appears in the file, with the schema's value (not just the same result).
    assert yaml.safe_load(DEFAULT_YAML.read_text()) == config_to_dict(PipelineConfig())


def test_a_file_overrides_only_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("stereo:\n  min_depth_m: 0.5\n  params: {block_size: 7}\npreprocess:\n  photometric: none\n")
    expected = config_to_dict(PipelineConfig())
    expected["stereo"].update(min_depth_m=0.5, params={"block_size": 7})
    expected["preprocess"]["photometric"] = "none"
    assert config_to_dict(load_config(path)) == expected


def test_config_dict_round_trip() -> None:
    config = config_from_dict({"device": "other", "stereo": {"max_disparity_px": 96}, "confidence": {"threshold": 0.5}})
    assert config_from_dict(config_to_dict(config)) == config
    assert config_from_dict(None) == config_from_dict({}) == PipelineConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": "red"}, r"unknown setting\(s\) \['colour'\]; allowed: \['confidence', 'device'"),
        ({"stereo": {"blocksize": 5}}, r"unknown setting\(s\) \['stereo\.blocksize'\]; allowed: \[.*'min_depth_m'"),
        ({"stereo": 5}, r"^stereo must be a mapping, got 5"),
        ({"preprocess": None}, r"^preprocess must be a mapping, got None"),
    ],
)
def test_unknown_or_misplaced_keys_are_named(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("preprocess", "long_side_px", 10),
        ("preprocess", "long_side_px", 10000),
        ("preprocess", "long_side_px", 640.5),  # a pixel count
        ("preprocess", "long_side_px", True),
        ("preprocess", "long_side_px", "640"),
        ("preprocess", "photometric", "gamma"),
        ("stereo", "max_disparity_px", 0),
        ("stereo", "max_disparity_px", 64.5),
        ("stereo", "min_depth_m", 0.0),
        ("stereo", "min_depth_m", None),
        ("stereo", "max_disparity_cap_px", 8),
        ("stereo", "params", [5]),
        ("confidence", "lr_tolerance_px", 0.0),
        ("confidence", "threshold", 1.5),
        ("confidence", "min_coverage", -0.1),
        ("confidence", "uniqueness_margin", 0.0),
        ("confidence", "keep_unconfident", 1),
        ("confidence", "keep_unconfident", "auto"),
        ("photo3d", "path", "spiral"),
        ("photo3d", "frames", 0),
        ("photo3d", "frames", 12.5),
        ("photo3d", "fps", 0.0),
        ("photo3d", "radius_px", 0.0),
    ],
)
def test_out_of_range_values_name_the_key(section: str, key: str, value) -> None:
    with pytest.raises(ConfigError, match=rf"^{section}\.{key} must be"):
        config_from_dict({section: {key: value}})


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("stereo: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml is not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- stereo\n- sgbm\n")
    with pytest.raises(ConfigError, match="must hold a mapping of settings"):
        load_config(listing)


def test_shipped_device_profile() -> None:
    profile = load_device_profile("cpu-2core")
    raw = yaml.safe_load((CONFIG_DIR / "devices" / "cpu-2core.yaml").read_text())
    assert profile.name == "cpu-2core" and profile.threads == raw["threads"] == 2
    assert profile.stage_ms == raw["stage_ms"] and profile.total_ms == raw["total_ms"]
    assert sum(profile.stage_ms.values()) <= profile.total_ms  # stage budgets fit in the total
    assert load_device_profile(PipelineConfig().device).name == PipelineConfig().device


def test_unknown_device_profile_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown device profile 'phone-9000'; available: \[.*'cpu-2core'.*\]"):
        load_device_profile("phone-9000")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("threads: 0\ntotal_ms: 100\npeak_rss_mb: 100\nstage_ms: {}\n", r"tiny\.threads must be an integer in \[1"),
        ("threads: 1\ntotal_ms: 100\npeak_rss_mb: 100\nstage_ms: {stereo: -5}\n", r"tiny\.stage_ms\.stereo must be"),
        ("threads: 1\ntotal_ms: 100\npeak_rss_mb: 100\nstage_ms: {}\ngpu: true\n", r"tiny\.yaml: .*'gpu'"),
        ("threads: 1\ntotal_ms: 100\nstage_ms: {}\n", r"tiny\.yaml: .*'peak_rss_mb'"),
    ],
)
def test_malformed_device_profiles_are_rejected(tmp_path: Path, monkeypatch, text: str, message: str) -> None:
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "tiny.yaml").write_text(text)
    monkeypatch.setattr("sensing.config.CONFIG_DIR", tmp_path)
    with pytest.raises(ConfigError, match=message):
        load_device_profile("tiny")
