"""Serving benchmark: this server vs MLflow's scoring server vs gunicorn+gevent+Flask (same handlers).

Same model, same worker count, same load generator (wrk, one thread), same machine, loopback only,
servers run alternately (one at a time, rotating order per round). Scenarios: 1-row and 100-row
CSV requests at concurrency 1 and 16. Also measures the floor: the model's own predict time for the
same payloads (scikit-learn and the verified NumPy fast path), in-process.

The model (``--model``, see benchmarks/bench_models.py): ``fixture`` is the serving tests' tiny model
(the default); ``pipeline`` is a churn model trained by ``pipelines.train`` on seeded synthetic
data, with the ``FunctionTransformer(as_text)`` step the platform's real models have.

Usage (from the repository root)::

    apt-get install wrk                      # the load generator
    .venv/bin/python benchmarks/serving_bench.py --duration 10 --rounds 2
    .venv/bin/python benchmarks/serving_bench.py --model pipeline --duration 10 --rounds 2

The peers' packages are installed into benchmarks/.venvs/serving from
benchmarks/requirements-serving.txt on first use (never into the main environment).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
VENVS = BENCH / ".venvs"
sys.path.insert(0, str(REPO))

from benchmarks.bench_models import MODEL_KINDS, build_model, fast_path_kind  # noqa: E402


def ensure_venv(name: str, requirements: Path) -> Path:
    """Create benchmarks/.venvs/<name> with the requirements (once); returns its python."""
    python = VENVS / name / "bin" / "python"
    marker = VENVS / name / ".installed"
    if not marker.exists() or marker.read_text() != requirements.read_text():
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
        marker.write_text(requirements.read_text())
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not healthy after {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_wrk(
    url: str, body_file: Path, content_type: str, concurrency: int, duration: int
) -> dict[str, float]:
    script = body_file.with_suffix(".lua")
    script.write_text(
        f"local f = io.open({str(body_file)!r}, 'rb')\nwrk.body = f:read('*all')\nf:close()\nwrk.method = 'POST'\n"
        f"wrk.headers['Content-Type'] = {content_type!r}\nwrk.headers['Accept'] = 'application/json'\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(script), url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip

    def latency_ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": latency_ms("50%"),
        "p99_ms": latency_ms("99%"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",  # type: ignore[dict-item]
    }


def floor_times(model_dir: Path, payloads: dict[int, Any]) -> dict[str, float]:
    """Median in-process predict time per payload (scikit-learn, and the fast path if it verified)."""
    import pandas as pd

    from pipelines.serving.codec import align_to_features, decode_body
    from pipelines.serving.inference import model_fn

    artifact = model_fn(model_dir)
    result = {}
    for rows, frame in payloads.items():
        columns = align_to_features(
            decode_body(frame.to_csv(index=False, header=False), "text/csv"), artifact.features
        )
        data = pd.DataFrame(columns)
        calls = [("sklearn", lambda data=data: artifact.model.predict_proba(data))]
        if artifact.fast is not None:
            calls.append(("fastpath", lambda columns=columns: artifact.fast.predict(columns)))
        for label, call in calls:
            samples = []
            for _ in range(200 if label == "sklearn" else 2000):
                start = time.perf_counter()
                call()
                samples.append(time.perf_counter() - start)
            result[f"{label}_{rows}row_ms"] = statistics.median(samples) * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="alternation rounds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--servers", default="ours,gunicorn-flask,mlflow,ours-sklearn")
    parser.add_argument(
        "--model",
        choices=MODEL_KINDS,
        default="fixture",
        help="fixture: the serving tests' model; pipeline: a churn model trained by pipelines.train",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "serving.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    bench_model = build_model(args.model, work)
    model_dir, payloads = bench_model.model_dir, bench_model.payloads
    model_info = {
        "kind": bench_model.kind,
        **bench_model.details,
        "features": list(payloads[1].columns),
        "fast_path": fast_path_kind(model_dir),
    }
    print(model_line(model_info), flush=True)
    if model_info["fast_path"] is None:
        print("warning: the fast path did not verify; 'ours' serves through scikit-learn", flush=True)
    bodies = {}
    for rows, frame in payloads.items():
        bodies[(rows, "plain")] = work / f"body{rows}.csv"
        bodies[(rows, "plain")].write_text(frame.to_csv(index=False, header=False))
        bodies[(rows, "header")] = work / f"body{rows}h.csv"
        bodies[(rows, "header")].write_text(frame.to_csv(index=False))

    wanted = args.servers.split(",")
    # Every server process (and the MLflow model export) runs from the repository root with it on
    # PYTHONPATH: the handlers are imported from `pipelines`, and pipeline models unpickle
    # `pipelines.transforms.as_text`.
    repo_env = {**os.environ, "PYTHONPATH": str(REPO)}
    peer_python = None
    if {"gunicorn-flask", "mlflow"} & set(wanted):
        peer_python = ensure_venv("serving", BENCH / "requirements-serving.txt")
        if "mlflow" in wanted:
            export = subprocess.run(
                [str(peer_python), "-c",
                 "import joblib, sys, mlflow.sklearn as m; m.save_model(joblib.load(sys.argv[1]), sys.argv[2], serialization_format=m.SERIALIZATION_FORMAT_CLOUDPICKLE)",
                 str(model_dir / "model.joblib"), str(work / "mlflow-model")],
                capture_output=True, text=True, cwd=REPO, env=repo_env,
            )  # fmt: skip
            if export.returncode != 0:
                raise RuntimeError(f"saving the model with mlflow.sklearn failed:\n{export.stderr[-2000:]}")

    def command(name: str, port: int) -> tuple[list[str], dict[str, str], str]:
        env = dict(repo_env)
        if name in ("ours", "ours-sklearn"):
            if name == "ours-sklearn":
                env["SERVING_FAST_PATH"] = "0"
            return ([str(REPO / ".venv/bin/python"), "-m", "mlops_cli.main", "serve", "--model-dir", str(model_dir),
                     "--port", str(port), "--workers", str(args.workers), "--log-level", "warning"], env, "plain")  # fmt: skip
        assert peer_python is not None
        bin_dir = peer_python.parent
        if name == "gunicorn-flask":
            env["MODEL_DIR"] = str(model_dir)
            return ([str(bin_dir / "gunicorn"), "-k", "gevent", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                     "--log-level", "warning", "benchmarks.peers.flask_app:app"], env, "plain")  # fmt: skip
        env["PATH"] = f"{bin_dir}:{env['PATH']}"
        return ([str(bin_dir / "mlflow"), "models", "serve", "-m", str(work / "mlflow-model"), "--env-manager",
                 "local", "-w", str(args.workers), "-h", "127.0.0.1", "-p", str(port)], env, "header")  # fmt: skip

    results: list[dict[str, Any]] = []
    for round_index in range(args.rounds):
        order = wanted[round_index % len(wanted) :] + wanted[: round_index % len(wanted)]
        for name in order:
            port = free_port()
            argv, env, style = command(name, port)
            log = work / f"{name}-round{round_index}.log"
            with log.open("wb") as log_file:
                process = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True)  # fmt: skip
            try:
                try:
                    wait_healthy(f"http://127.0.0.1:{port}/ping", process)
                except RuntimeError as error:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{name}: {error}; its stderr ({log}) ends with:\n{tail}") from None
                url = f"http://127.0.0.1:{port}/invocations"
                check = httpx.post(
                    url, content=bodies[(100, style)].read_bytes(), headers={"content-type": "text/csv"}
                )
                if check.status_code != 200:
                    raise RuntimeError(f"{name} answered {check.status_code}: {check.text[:200]}")
                run_wrk(url, bodies[(1, style)], "text/csv", 4, 2)  # warm-up
                for rows in (1, 100):
                    for concurrency in (1, 16):
                        measured = run_wrk(url, bodies[(rows, style)], "text/csv", concurrency, args.duration)
                        entry = {
                            "server": name,
                            "round": round_index,
                            "rows": rows,
                            "concurrency": concurrency,
                            **measured,
                        }
                        results.append(entry)
                        print(json.dumps(entry), flush=True)
            finally:
                stop(process)

    floor = floor_times(model_dir, payloads)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[:1],
    }
    with contextlib.suppress(OSError, StopIteration):
        machine["cpu_model"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    if peer_python is not None:
        freeze = subprocess.run(
            [str(peer_python), "-m", "pip", "freeze"], capture_output=True, text=True
        ).stdout
        machine["peer_versions"] = [
            line for line in freeze.splitlines()
            if line.split("==")[0].lower() in {"mlflow", "gunicorn", "gevent", "flask", "uvicorn", "httptools", "uvloop", "scikit-learn", "pandas", "numpy"}
        ]  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": machine,
                "model": model_info,
                "workers": args.workers,
                "duration_s": args.duration,
                "floor": floor,
                "runs": results,
            },
            indent=2,
        )
    )
    print(json.dumps(floor, indent=2))
    print(summarise(results, model_info))


def model_line(model: dict[str, Any]) -> str:
    """One line naming the benchmarked model: kind, name, feature count and fast-path kind."""
    fast = model["fast_path"] or "none (scikit-learn)"
    return f"model: {model['kind']} ({model['model_name']}, {len(model['features'])} features, fast path: {fast})"


def summarise(results: list[dict[str, Any]], model: dict[str, Any]) -> str:
    """The model line and a Markdown table: median over rounds per server and scenario."""
    keys = sorted({(r["rows"], r["concurrency"]) for r in results})
    servers = list(dict.fromkeys(r["server"] for r in results))
    lines = [
        model_line(model),
        "",
        "| rows | clients | server | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|---|",
    ]
    for rows, concurrency in keys:
        for server in servers:
            runs = [
                r
                for r in results
                if r["server"] == server and r["rows"] == rows and r["concurrency"] == concurrency
            ]
            if not runs:
                continue
            lines.append(
                f"| {rows} | {concurrency} | {server} | {statistics.median(r['rps'] for r in runs):,.0f} | "
                f"{statistics.median(r['p50_ms'] for r in runs):.2f} | {statistics.median(r['p99_ms'] for r in runs):.2f} | "
                f"{sum(r['non_2xx'] for r in runs):.0f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
