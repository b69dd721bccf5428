"""The cost of DKIM signing in the send's hot path: Personaliser.message with and without a signer.

    .venv/bin/python bench/dkim_bench.py [--messages 2000] [--bits 2048]

Builds the sample digest (March 2021) in a temporary copy of the workspace, then makes N personalised messages
plain and N signed (RSA key made here), in the same process, alternating rounds, and reports the time per
message and the ratio signed / plain. For comparison it also times dkimpy's own `dkim.sign` (pure-Python
RSA) on the same plain messages, which is what signing with dkimpy directly would cost.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest import outdir
from digest.build import build
from digest.config import load_config
from digest.dkim import SIGNED
from digest.message import Personaliser, personaliser
from digest.window import resolve

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2021, 4, 15, 12, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bits", type=int, default=2048)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        shutil.copy(REPO / "digest.toml", ws / "digest.toml")
        shutil.copytree(REPO / "items", ws / "items")
        shutil.copytree(REPO / "templates", ws / "templates")
        env = {
            "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe?u={token}",
            "DIGEST_UNSUBSCRIBE_SECRET": "bench-secret-" + "x" * 32,
        }
        config = load_config(ws / "digest.toml", environ=env)
        key = rsa.generate_private_key(public_exponent=65537, key_size=args.bits)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        dkim_env = {
            "DIGEST_DKIM_DOMAIN": "example.org",
            "DIGEST_DKIM_SELECTOR": "bench",
            "DIGEST_DKIM_KEY": pem.decode(),
        }
        dkim_config = load_config(ws / "digest.toml", environ={**env, **dkim_env})
        window = resolve(tz=config.tz, locale=config.language, now=NOW, month_="2021-03")
        parts = outdir.load(build(config, window, now=NOW).folder).parts()

    plain = personaliser(config, parts, now=NOW)
    signed = personaliser(dkim_config, parts, now=NOW)
    assert plain.signing is None and signed.signing is not None
    emails = [f"reader{i}@example.org" for i in range(args.messages)]

    def per_message(maker: Personaliser) -> float:
        start = time.perf_counter()
        for email in emails:
            maker.message(email, "Reader Name")
        return (time.perf_counter() - start) / len(emails)

    plain_t, signed_t = [], []
    for _ in range(args.rounds):
        plain_t.append(per_message(plain))
        signed_t.append(per_message(signed))
    p, s = statistics.median(plain_t), statistics.median(signed_t)
    size = len(plain.message(emails[0], "Reader Name").data)
    print(f"{args.messages} messages x {args.rounds} rounds, {size} bytes each, RSA {args.bits} bits")
    print(f"plain   {p * 1e6:8.1f} µs/message")
    print(f"signed  {s * 1e6:8.1f} µs/message   ratio {s / p:.1f}x   (+{(s - p) * 1e6:.0f} µs)")

    try:
        import dkim
    except ImportError:
        print("dkimpy not installed: no comparison")
        return
    sample = [plain.message(e, "Reader Name").data for e in emails[: max(args.messages // 10, 20)]]
    headers = [h.encode() for h in SIGNED]
    start = time.perf_counter()
    for data in sample:
        dkim.sign(data, b"bench", b"example.org", pem, include_headers=headers)
    d = (time.perf_counter() - start) / len(sample) + p
    print(f"dkimpy  {d * 1e6:8.1f} µs/message   ratio {d / p:.1f}x   (dkim.sign after the plain message)")


if __name__ == "__main__":
    main()
