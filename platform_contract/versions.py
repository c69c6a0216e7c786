"""Version facts of the AWS services the platform runs on, each with its source and the date it was read.

One definition per fact: the stack config (``stacks/config``), the pipeline settings and the tests import
them from here. Plain Python, no third-party imports. When a fact changes, change it here and the date.
"""

from __future__ import annotations

EKS_DEFAULT_KUBERNETES_VERSION = "1.35"
"""Kubernetes minor of a new cluster: in EKS standard support until 27 Mar 2027.
Source: https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html (read 2026-12-01)."""

EKS_MIN_KUBERNETES_VERSION = (1, 35)
"""Oldest Kubernetes minor accepted. 1.34 leaves EKS standard support on 2 Dec 2026; the cluster's upgrade
policy is ``STANDARD`` (no extended-support charge), so an older minor would be upgraded by EKS under the
stack. Raise it as versions leave standard support (CKV_AWS_339).
Source: https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html (read 2026-12-01)."""

EMR_ON_EKS_RELEASE = "emr-7.13.0"
"""Newest EMR 7.x release on EMR on EKS (first build ``emr-7.13.0-20260410``, April 2026); the 7.x line runs
Spark 3.5, the line of the local PySpark the feature job is tested with.
Source: https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/emr-eks-releases.html and
https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/emr-eks-7.13.0-20260410.html
(read 2026-12-01)."""

EMR_ON_EKS_RELEASE_LABEL = f"{EMR_ON_EKS_RELEASE}-latest"
"""Default ``releaseLabel`` of ``StartJobRun``: ``-latest`` follows the release's newest patched image."""

SPARK_LINE = "3.5"
"""Spark minor line shared by EMR 7.x and the local PySpark (``pyspark==3.5.*``)."""

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
