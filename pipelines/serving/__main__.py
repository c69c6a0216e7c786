"""``python -m pipelines.serving serve``: the custom serving container's entry point."""

from __future__ import annotations

import sys

from pipelines.serving.cli import container_main

if __name__ == "__main__":
    container_main(sys.argv[1:])
