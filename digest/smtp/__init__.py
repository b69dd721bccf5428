"""The SMTP dialogue: settings, TLS, connect and log in, one transaction, the pipelined session, the rate
limit. No journal and no threads here (digest/send.py runs the send).

`connect.py` is the connection (settings, TLS, login, one message at a time, the rate limit); `session.py`
one connection's messages pipelined, with BDAT when the server offers CHUNKING.
"""

from __future__ import annotations

from digest.smtp.connect import *  # noqa: F403
from digest.smtp.connect import __all__ as _connect_names
from digest.smtp.session import Done, Outcome, Session

__all__ = [*_connect_names, "Done", "Outcome", "Session"]
