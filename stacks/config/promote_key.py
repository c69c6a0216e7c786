"""``python -m stacks.config.promote_key ARN MODELS_JSON``: the config key the promote build sets.

Prints ``models[<i>].endpoint.modelPackageArn`` for the catalog entry that owns the package's group
(:func:`stacks.config.models.model_config_path`); ``delivery/buildspecs/promote.yml`` runs it with
the target stack's ``pulumi config get models``.
"""

from __future__ import annotations

from stacks.config.models import model_config_path


def main(argv: list[str] | None = None) -> int:
    """``python -m stacks.config.models ARN MODELS_JSON``: print the config path to set for ``ARN``."""
    import json
    import re
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m stacks.config.promote_key <model package ARN> <models JSON>", file=sys.stderr)
        return 2
    match = re.search(r":model-package/((mlops-[a-z]+)-[A-Za-z0-9-]+)/\d+$", args[0])
    if match is None:
        print(f"not a versioned model package ARN of a platform group: {args[0]}", file=sys.stderr)
        return 2
    try:
        print(model_config_path(json.loads(args[1]), match.group(1), match.group(2)))
    except (ValueError, AttributeError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
