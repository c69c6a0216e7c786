"""Version facts the platform depends on, each with its source and the date it was checked.

One place for them: the stack config validation, the MWAA packaging (``delivery/mwaa.py``) and the
tests import these names instead of repeating the numbers.
"""

from __future__ import annotations

MWAA_AIRFLOW_VERSION = "3.3.1"
"""The Airflow version of the platform's MWAA environments: the newest Airflow 3 line MWAA offers
(issue 12 item 23; https://docs.aws.amazon.com/mwaa/latest/userguide/airflow-versions.html, checked
2026-12-01), and the line the DAGs are tested on (``tests/dags``)."""

MWAA_AIRFLOW_VERSIONS = ("3.0.6", MWAA_AIRFLOW_VERSION)
"""Airflow 3 versions MWAA offers that the stack config accepts (same page, 2026-12-01); 3.0.6 stays
accepted so an existing environment can be upgraded in place. Add a version once that page lists it."""

MWAA_PYTHON_VERSION = "3.12"
"""Python of MWAA's Airflow 3 images (same page, 2026-12-01): the constraints file and the worker
virtualenv's wheels are for it."""
