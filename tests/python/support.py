"""What the Python tests share: `tern serve` of a project on an ephemeral port, with its
logs kept for failure messages. `TERN_BIN` picks the binary (tests/e2e/python_clients.rs
sets it to the build under test)."""

import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TERN_BIN = os.environ.get("TERN_BIN", str(REPO / "target" / "release" / "tern"))


def write_project(files: dict) -> str:
    """A new project directory holding `files` (relative path -> text)."""
    directory = tempfile.mkdtemp(prefix="tern-python-")
    for rel, text in files.items():
        path = Path(directory) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


class Tern:
    """`tern serve <directory>` on 127.0.0.1 and an ephemeral port, stopped by `stop()`."""

    def __init__(self, directory: str, env: dict):
        self.dir = directory
        full_env = {
            **os.environ,
            "TERN_LOG": os.environ.get("TERN_TEST_LOG", "info"),
            "TERN_CACHE_DIR": os.environ.get("TERN_CACHE_DIR", str(REPO / "target" / "tern-e2e-cache")),
            **env,
        }
        self.proc = subprocess.Popen(
            [TERN_BIN, "serve", self.dir, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=full_env,
            text=True,
        )
        self.logs = []
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline and self.port is None:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.match(r"^listening on http://127\.0\.0\.1:(\d+)$", line.strip())
            if m:
                self.port = int(m.group(1))
        if self.port is None:
            self.stop()
            raise RuntimeError("tern did not start:\n" + "".join(self.logs[-50:]))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.logs.append(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        return "\n--- tern's logs (end) ---\n" + "".join(self.logs[-40:])
