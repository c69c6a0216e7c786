"""How long each DAG file takes to parse, the way Airflow's DAG processor parses it.

Airflow is imported once first (the processor has it loaded); then each file is parsed in its own
DagBag, ``--repeat`` times, each time in a fresh interpreter so no module caching flatters the
result. Prints a table and writes ``benchmarks/results/dag_parse.json``. Uses a throwaway AIRFLOW_HOME
and a stack outputs file with ``--models`` models.

    .venv/bin/python benchmarks/dag_parse_bench.py --repeat 5 --models 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import sys, time
from airflow.dag_processing.dagbag import DagBag  # loaded by the DAG processor before any file
import airflow.providers.amazon.aws.operators.emr, airflow.providers.standard.operators.python  # noqa
start = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - start
assert not bag.import_errors, bag.import_errors
print(elapsed, len(bag.dags))
"""


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="dag-parse-") as home:
        outputs = Path(home) / "outputs.json"
        models = [f"model{i}" for i in range(args.models)]
        outputs.write_text(json.dumps({"environment": "dev", "models": models}))
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
            "MLOPS_OUTPUTS_FILE": str(outputs),
        }
        for path in sorted((ROOT / "dags").glob("*.py")):
            times, dags = [], 0
            for _ in range(args.repeat):
                out = subprocess.run(
                    [sys.executable, "-c", PROBE, str(path)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                times.append(float(out[-2]))
                dags = int(out[-1])
            results[path.name] = {"median_s": statistics.median(times), "max_s": max(times), "dags": dags}
            print(
                f"{path.name:24} {dags} DAGs  median {statistics.median(times) * 1000:7.1f} ms  max {max(times) * 1000:7.1f} ms"
            )
    target = ROOT / "benchmarks" / "results" / "dag_parse.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps({"models": args.models, "repeat": args.repeat, "files": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
