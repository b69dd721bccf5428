"""digest: build a monthly email digest from Markdown news items, and send it."""

__version__ = "0.1.0"
