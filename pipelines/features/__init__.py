"""Feature step: a PySpark job (run on EMR on EKS, or locally in Spark local mode) over curated data.

``spark_job.py`` is the script EMR runs (it needs only PySpark and the standard library);
``spec.py`` turns a dataset contract into the job's JSON spec and has a pandas reference
implementation; ``local.py`` runs the job locally; ``emr.py`` submits it to EMR on EKS and waits.
"""
