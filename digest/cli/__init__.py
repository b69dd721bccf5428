"""The command line: parse options, call one library function per command, turn DigestError into
`Error: ...` on stderr and exit 1.

Status goes to stderr, content (lists, messages) to stdout. Exit codes: 0 ok, 1 error, 2 usage error
(click's), 3 nothing in the window. `base.py` holds the group and what commands share; each command module
registers its commands on the group when imported, and the group imports a command's module when that
command is asked for.
"""

from __future__ import annotations

from digest.cli.base import State, main

__all__ = ["State", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
