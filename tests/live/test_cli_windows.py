"""`smartfocus desktop` and `smartfocus live`: bad input exits 2 with one line; a file camera runs live."""

from pathlib import Path

import pytest

from smartfocus.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["desktop", "missing.mp4"], "missing.mp4"),
        (["live", "--camera", "missing.mp4"], "neither a camera index nor an existing video file"),
        (["live", "--camera", "97"], "camera 97 could not be opened"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, x_display: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("smartfocus: error:") and len(err.splitlines()) == 1


def test_no_display_is_refused(dog_640: Path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["live", "--camera", str(dog_640)]) == 2
    assert "no display" in capsys.readouterr().err


def test_bad_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["live", "--camera", "0", "--size", "big"])
    assert exit_info.value.code == 2 and "WIDTHxHEIGHT" in capsys.readouterr().err


def test_live_window_on_a_file_camera_runs_until_the_clip_ends(
    x_display: str, dog_640: Path, model_path: Path, tmp_path: Path
) -> None:
    # the window closes by itself when the file "camera" runs out of frames
    assert (
        main(["live", "--camera", str(dog_640), "--model", str(model_path), "--stills", str(tmp_path)]) == 0
    )
