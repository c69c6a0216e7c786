"""The offline rehearsal: an emulated AWS account and the lifecycle run on it.

Dev and test tooling only. ``components/``, ``stacks/``, ``pipelines/`` and ``dags/`` never import
this package: the pipeline code meets the emulator only through AWS APIs at the endpoint URLs in its
settings, exactly as it meets AWS.
"""
