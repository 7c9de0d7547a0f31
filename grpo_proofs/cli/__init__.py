"""The ``grpo-proofs`` command line: one module per subcommand.

Each module in ``COMMANDS`` defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments; returns the exit code). Bad input raises
:class:`grpo_proofs.errors.InputError` and becomes one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import InputError

__all__ = ["main", "build_parser", "COMMANDS"]

#: subcommand modules, in the order ``--help`` lists them
COMMANDS = [
    "variants",
    "gradient",
    "verify",
    "overshoot",
    "trainer",
    "scale",
    "prefix",
    "check",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grpo-proofs",
        description="Derive and check the hidden objective biases of GRPO-style losses (arXiv 2601.05002).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"grpo-proofs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grpo-proofs: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
