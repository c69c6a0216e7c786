"""The ML pipeline code that runs on the platform. Never imports Pulumi."""
