#!/usr/bin/env bash
# The subscribers' lifecycle end to end, with the real commands, in a fresh `digest init` workspace:
# `suppress add`, a one-click POST to the unsubscribe endpoint, a mailed unsubscribe and a hard bounce read
# by `digest bounces`; the next send reaches none of them; --status and `suppress list` say why; `suppress
# remove` brings one back. Needs `./dev test` (or `./dev sample`) run once for .venv/. Usage: scripts/lifecycle_demo.sh
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$REPO/.venv/bin}
export PATH=$BIN:$PATH
W=$(mktemp -d -t digest-lifecycle-XXXXXX); cd "$W"
export HOME=$W
digest init ws >/dev/null 2>&1; cd ws
export DIGEST_SMTP_HOST=127.0.0.1 DIGEST_SMTP_PORT=8026 DIGEST_SMTP_SECURITY=none
export DIGEST_UNSUBSCRIBE_URL='https://example.org/unsubscribe?u={token}'
export DIGEST_UNSUBSCRIBE_MAILTO=unsubscribe@example.org
export DIGEST_UNSUBSCRIBE_SECRET=$(python3 -c "import secrets; print(secrets.token_urlsafe(32))")
printf "email,name\nann@example.org,Ann\nbob@example.org,Bob\ncarl@example.org,Carl\ndan@example.org,Dan\neve@example.org,Eve\n" > subscribers.csv
mkdir -p $W/sink/{cur,new,tmp}
python -m aiosmtpd -n -l 127.0.0.1:8026 -c aiosmtpd.handlers.Mailbox $W/sink >/dev/null 2>&1 & SINK=$!
sleep 1
rcpts() { grep -h "^X-RcptTo:" $W/sink/new/* $W/sink/cur/* 2>/dev/null | sort | uniq -c; }
echo "== send 1"; digest send --last 30d --subscribers subscribers.csv --yes 2>&1 | tail -1; rcpts
echo "== suppress add ann"; digest suppress add ann@example.org; echo "exit $?"
echo "== one-click POST for eve"
digest unsubscribe serve --port 8027 >/dev/null 2>&1 & SRV=$!; sleep 2
TOKEN=$(python3 - <<'P'
import os, base64, hmac, hashlib
s=os.environ["DIGEST_UNSUBSCRIBE_SECRET"]; who=base64.urlsafe_b64encode(b"eve@example.org").rstrip(b"=").decode()
print(who+"."+hmac.new(s.encode(), who.encode(), hashlib.sha256).hexdigest()[:32])
P
)
# The link as eve's message carried it:
LINK=$(grep -h -A3 "^To: Eve" $W/sink/new/* | true; python3 - <<P
import glob, email, email.policy, re
for f in glob.glob("$W/sink/new/*"):
    m = email.message_from_bytes(open(f,"rb").read(), policy=email.policy.default)
    if "eve@example.org" in m["X-RcptTo"]:
        print(re.findall(r"<(https[^>]+)>", str(m["List-Unsubscribe"]))[0])
P
)
echo "link in eve's List-Unsubscribe: $LINK"
curl -s -o /dev/null -w "GET %{http_code}\n" "${LINK/https:\/\/example.org/http://127.0.0.1:8027}"
digest suppress list | grep -c eve || true
curl -s -o /dev/null -w "POST %{http_code}\n" -d "List-Unsubscribe=One-Click" "${LINK/https:\/\/example.org/http://127.0.0.1:8027}"
kill $SRV
echo "== a mailed unsubscribe from bob and a hard bounce for carl, in a Maildir"
mkdir -p $W/bounces/{new,cur,tmp}
CARL_ID=$(python3 - <<P
import glob, email, email.policy
for f in glob.glob("$W/sink/new/*"):
    m = email.message_from_bytes(open(f,"rb").read(), policy=email.policy.default)
    if "carl@example.org" in m["X-RcptTo"]: print(m["Message-ID"])
P
)
cat > $W/bounces/new/1.unsub <<M
From: Bob <bob@example.org>
To: unsubscribe@example.org
Subject: unsubscribe
Date: Tue, 01 Dec 2026 10:00:00 +0000
Message-ID: <bob-unsub-1@example.org>

M
sed -e "s/alice@example.net/carl@example.org/g" -e "s/<[^>]*@[^>]*digest[^>]*>/$CARL_ID/g" $REPO/tests/fixtures/bounces/postfix-permanent.eml > $W/bounces/new/2.bounce
grep -q "$CARL_ID" $W/bounces/new/2.bounce || python3 - <<P
# the fixture names its own returned Message-ID: put carl's in
import re
p="$W/bounces/new/2.bounce"; s=open(p).read()
s=re.sub(r"(?im)^(Message-ID:\s*)<[^>]+>(?=\s*$)(?![\s\S]*^Message-Id: <2021)", r"\1$CARL_ID", s)
open(p,"w").write(s)
P
cp $REPO/tests/fixtures/bounces/vacation-exchange.eml $W/bounces/new/3.vacation
digest bounces --maildir $W/bounces --dry-run; echo "dry-run exit $?"
digest bounces --maildir $W/bounces; echo "exit $?"
echo "== suppress list"; digest suppress list; echo "exit $?"
echo "== next digest: a new item, then a send"
digest new "Second item" --category News --summary "Another." >/dev/null
rm -rf $W/sink/new/* $W/sink/cur/*
digest build --last 2d >/dev/null 2>&1
digest send --last 2d --subscribers subscribers.csv --yes 2>&1 | tail -2
rcpts
echo "== status"; digest send --last 2d --status; echo "exit $?"
echo "== suppress remove eve, send again"; digest suppress remove eve@example.org; echo "exit $?"
digest send --last 2d --subscribers subscribers.csv --yes 2>&1 | tail -1
rcpts
kill $SINK
