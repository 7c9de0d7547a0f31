"""The ``grpo-proofs`` command line: one module per subcommand.

Each module in ``COMMANDS`` defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments; returns the exit code). Bad input raises
:class:`grpo_proofs.errors.InputError` and becomes one line on stderr with exit code 2; so does
an argument the parser itself refuses (an unknown flag, a missing value): one line naming the
flag and pointing to ``--help``, never the usage dump. A negative number given as a flag's value
(``--eps -1e-8``) is read as that value, so its range check answers. A command checks what it can of
its input (flags, sizes estimated against the memory available, output folders) before it imports
torch, so such a refusal comes within about a second.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import InputError

__all__ = ["main", "build_parser", "COMMANDS", "Parser"]

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
    "audit",
]


class _UsageError(Exception):
    """An argument the parser refused; the message is the one line to print."""


class Parser(argparse.ArgumentParser):
    """argparse, with a refused argument raised as one line instead of the usage text (exit code 2)."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: error: {message}; see `{self.prog} --help`")


def _negative_number(token: str) -> bool:
    """'-1e-8', '-3', '-.5', '-inf', '-1,0,1' (argparse would read '-1e-8' as an unknown flag)."""
    if not token.startswith("-") or token.startswith("--") or len(token) < 2:
        return False
    if token[1].isdigit() or token[1] == ".":
        return True
    try:
        float(token)
    except ValueError:
        return False
    return True


def _glue_negative_values(argv: list[str]) -> list[str]:
    """``--eps -1e-8`` -> ``--eps=-1e-8``: a flag followed by a negative number takes it as its value."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _negative_number(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(_glue_negative_values(argv))
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"grpo-proofs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grpo-proofs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped early (| head): stop quietly, as a shell tool does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
