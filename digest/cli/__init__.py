"""The command line: parse options, call one library function per command, turn DigestError into
`Error: ...` on stderr and exit 1.

Status goes to stderr, content (lists, messages) to stdout. Exit codes: 0 ok, 1 error, 2 usage error
(click's), 3 nothing in the window. `base.py` holds the group and what commands share; each command module
registers its commands on the group when imported.
"""

from __future__ import annotations

# Each module registers its commands on the group when imported.
from digest.cli import (  # noqa: F401
    bounces,
    commands,
    diff,
    feeds,
    sending,
    suppress,
    unsubscribe,
)
from digest.cli.base import State, main

__all__ = ["State", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
