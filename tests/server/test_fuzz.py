"""Odd and broken inputs, built here from a real clip: the server answers each with a 4xx JSON
error (or accepts a file that really decodes), never a 500, and keeps nothing it refused; the CLI
exits 2 with one line and writes nothing."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from smartfocus.server import create_app


def corpus(clip: Path) -> list[tuple[str, bytes]]:
    """60 inputs: truncations, zeroed and shuffled stretches, random bytes, other file types."""
    data = clip.read_bytes()
    rng = random.Random(7)  # the same corpus on every machine
    inputs: list[tuple[str, bytes]] = [("empty", b""), ("one byte", b"\0"), ("text", b"hello, world\n" * 50)]
    inputs += [
        (f"truncated at {f:.2f}", data[: int(len(data) * f)])
        for f in (0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 0.95, 0.99)
    ]
    inputs += [(f"head {n} bytes", data[:n]) for n in (8, 32, 64, 512, 4096)]
    for _ in range(12):
        start = rng.randrange(len(data))
        size = rng.choice((64, 4096, 40_000, 200_000))
        damaged = bytearray(data)
        damaged[start : start + size] = bytes(min(size, len(data) - start))
        inputs.append((f"zeroed {size} at {start}", bytes(damaged)))
    for index in range(8):
        damaged = bytearray(data)
        for _ in range(50):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        inputs.append((f"flipped bytes {index}", bytes(damaged)))
    inputs += [(f"random {n}", rng.randbytes(n)) for n in (100, 10_000, 300_000, 1_000_000)]
    inputs += [
        ("png header", b"\x89PNG\r\n\x1a\n" + rng.randbytes(2000)),
        ("jpeg header", b"\xff\xd8\xff\xe0" + rng.randbytes(2000)),
        ("zip header", b"PK\x03\x04" + rng.randbytes(2000)),
        ("ftyp only", data[:32] + bytes(5000)),
        ("mp4 twice", data + data),
        ("tail only", data[len(data) // 2 :]),
        ("html", b"<html><body>not a video</body></html>"),
        ("json", b'{"video": true}'),
        ("utf-16 text", "a video".encode("utf-16")),
        ("null padding", bytes(100_000)),
    ]
    while len(inputs) < 60:
        cut = rng.randrange(len(data))
        inputs.append((f"spliced at {cut}", data[cut:] + data[:cut]))
    return inputs


@pytest.mark.slow
def test_odd_uploads_get_json_errors_and_leave_nothing(
    tmp_path: Path, server_settings, short_clip: Path, serve_app
) -> None:
    settings = server_settings(max_upload_bytes=4 << 20)
    inputs = corpus(short_clip)
    assert len(inputs) >= 50
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        kept = set()
        for name, content in inputs:
            for filename in ("clip.mp4", "../../etc/passwd", "x" * 300 + ".mov"):
                answer = client.post("/upload", files={"file": (filename, content, "video/mp4")})
                if answer.status_code == 200:  # it really decodes (first and last frame)
                    kept.add(answer.json()["video_id"])
                    client.post(f"/jobs/{answer.json()['analysis']['id']}/cancel")
                    continue
                assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text)
                error = answer.json()["error"]
                assert error["code"] and error["message"] and str(tmp_path) not in error["message"], name
                break  # one file name per refused input is enough
        folders = {p.name for p in settings.videos_dir.iterdir()}
        assert folders == kept  # nothing kept of what was refused
        for video_id in kept:
            names = {p.name for p in (settings.videos_dir / video_id).iterdir()}
            assert all(n.startswith(("source", "preview.", ".preview.")) or n == "renders" for n in names), (
                names
            )  # no client names


@pytest.mark.parametrize("index", range(0, 60, 6))
def test_odd_inputs_make_the_cli_exit_2_and_write_nothing(
    index: int, short_clip: Path, model_path: Path, tmp_path: Path
) -> None:
    name, content = corpus(short_clip)[index]
    source, output = tmp_path / "in.mp4", tmp_path / "out" / "o.mp4"
    source.write_bytes(content)
    output.parent.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "smartfocus",
            "render",
            str(source),
            "-o",
            str(output),
            "--model",
            str(model_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode == 0:  # a file that decodes whole is transcoded
        assert output.is_file(), name
        return
    assert done.returncode == 2, (name, done.stderr[-500:])
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("smartfocus: error:"), done.stderr
    assert "Traceback" not in done.stderr
    assert list(output.parent.iterdir()) == [], name
