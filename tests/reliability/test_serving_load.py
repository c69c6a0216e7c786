"""The inference server (``mlops serve``, one worker) under sustained loopback load: no errors, flat memory.

Bounded: ``REQUESTS`` requests from ``CLIENTS`` threads over keep-alive connections, a mix of CSV and
JSON bodies of 1-50 rows, with malformed requests mixed in (each must be a 4xx, never a 5xx). RSS is
read from ``/proc/<pid>/status`` after a warm-up and at the end; the growth must stay under
``RSS_GROWTH_MB`` (a leak of even a few KiB per request would exceed it).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.unit.serving.conftest import free_port
from tests.unit.serving.model_fixture import sample_rows, write_artifact

pytestmark = pytest.mark.slow
CLIENTS = 4
REQUESTS = 2400
WARMUP = 300
RSS_GROWTH_MB = 25.0
TIME_LIMIT_S = 150.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def _bodies() -> list[tuple[bytes, str, int]]:
    """(body, content type, expected status class) cycled by the clients."""
    bodies: list[tuple[bytes, str, int]] = []
    for rows in (1, 5, 50):
        frame = sample_rows(rows, rows)
        bodies.append((frame.to_csv(header=False, index=False).encode(), "text/csv", 2))
        bodies.append((str(frame.to_json(orient="records")).encode(), "application/json", 2))
    bodies.append((b"not,a,row\n", "text/csv", 4))
    bodies.append((b'{"instances": [[1, 2]]', "application/json", 4))
    bodies.append((b"\x00\x01", "application/x-npy", 4))
    return bodies


def test_sustained_load_has_no_errors_and_flat_memory(tmp_path: Path) -> None:
    model_dir = write_artifact(tmp_path / "model", rows=400)
    port = free_port()
    command = [sys.executable, "-m", "mlops_cli.main", "serve", "--model-dir", str(model_dir)]
    command += ["--port", str(port), "--workers", "1", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(0.2)

        bodies = _bodies()
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()
        done = [0]
        rss: dict[str, float] = {}
        started = time.monotonic()

        def client(index: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                for i in range(index, REQUESTS, CLIENTS):
                    body, content_type, expected = bodies[i % len(bodies)]
                    try:
                        status = http.post(
                            "/invocations", content=body, headers={"content-type": content_type}
                        ).status_code
                        outcome = "as-expected" if status // 100 == expected else f"status-{status}"
                    except httpx.HTTPError as exc:
                        outcome = f"transport-{type(exc).__name__}"
                    with lock:
                        outcomes[outcome] += 1
                        done[0] += 1
                        if done[0] == WARMUP:
                            rss["warm"] = _rss_mb(process.pid)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIME_LIMIT_S)
        elapsed = time.monotonic() - started
        rss["end"] = _rss_mb(process.pid)
        assert not any(t.is_alive() for t in threads), f"load did not finish in {TIME_LIMIT_S} s"
        assert outcomes == Counter({"as-expected": REQUESTS}), outcomes
        growth = rss["end"] - rss["warm"]
        assert growth < RSS_GROWTH_MB, f"RSS grew {growth:.1f} MB under load ({rss})"
        assert process.poll() is None  # still serving
        print(f"{REQUESTS} requests in {elapsed:.1f} s ({REQUESTS / elapsed:.0f}/s), RSS {rss}")
    finally:
        process.terminate()
        process.wait(timeout=20)
