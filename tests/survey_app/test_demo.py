"""`survey demo` on an empty directory: prepares the database, prints logins, serves pages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SURVEY = str(Path(sys.executable).with_name("survey"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SURVEY_", "TEST_DATABASE"))}


@pytest.mark.slow
def test_demo_starts_on_an_empty_directory_and_reruns(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([SURVEY, "demo", "--port", str(port)], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        body = ""
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"demo exited early:\n{proc.stdout.read()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert "Đăng nhập" in body
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "admin-demo-2026" in output  # the logins are printed
    assert (tmp_path / "instance" / "survey.db").is_file()
    again = subprocess.run([SURVEY, "demo", "--no-serve"], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "admin-demo-2026" in again.stdout
