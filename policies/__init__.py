"""The platform's policy pack: security and cost guardrails over the resources a stack declares.

Rule logic is plain functions over ``(resource_type, props)`` (or over the whole stack for rules
that relate resources, such as a bucket and its encryption configuration), so the same rules run
under ``pulumi preview --policy-pack policies`` (:mod:`policies.pack`) and offline over the mock
engine's synth (:mod:`policies.check`, the ``mlops check`` command).
"""
