"""The `digest` command (`python -m digest` and the installed script)."""

import gc

# The cyclic garbage collector's default pace (a young collection every 700 net allocations) spends about
# 6% of a build scanning the modules and templates being loaded, objects that live as long as the process
# and are never garbage. Every 100,000 allocations instead: no collection at all in a build of the sample.
# The commands that run long (a send, the live preview, the readers) go back to Python's pace as they
# start (digest/cli/base.py, LONG_RUNNING).
YOUNG_COLLECTION_EVERY = 100_000


def run() -> None:
    """Run the command line with the collector's pace set for it, then import it (the imports are what
    the pace spares)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)
    from digest.cli import main

    main()


if __name__ == "__main__":
    run()
