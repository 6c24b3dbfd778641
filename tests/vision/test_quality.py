"""Analysis quality presets: what `--quality` and `open_video(quality=...)` select."""

from pathlib import Path

import pytest

import smartfocus
from smartfocus.errors import SelectionError
from smartfocus.vision.segment import QUALITY_PRESETS, AnalysisSettings, analysis_settings


def test_presets_and_overrides() -> None:
    assert analysis_settings() == AnalysisSettings() == QUALITY_PRESETS["balanced"]
    assert analysis_settings("fast") == AnalysisSettings(imgsz=320, stride=2)
    assert analysis_settings("best").imgsz == 640
    assert analysis_settings("best", stride=3) == AnalysisSettings(imgsz=640, stride=3)
    assert analysis_settings("fast", imgsz=416) == AnalysisSettings(imgsz=416, stride=2)


def test_an_unknown_preset_names_the_valid_ones(davis_dir: Path) -> None:
    with pytest.raises(ValueError, match="fast, balanced, best"):
        analysis_settings("ultra")
    with pytest.raises(SelectionError, match="unknown quality 'ultra'"):
        smartfocus.open_video(davis_dir / "swing" / "frames", quality="ultra")


def test_the_api_opens_with_the_preset(davis_dir: Path) -> None:
    with smartfocus.open_video(davis_dir / "swing" / "frames", quality="fast") as video:
        assert video.settings == AnalysisSettings(imgsz=320, stride=2)
