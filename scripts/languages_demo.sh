#!/usr/bin/env bash
# Two languages end to end, with the real commands, in a fresh `digest init` workspace: a French feed
# imported from a local file, one build making the English and the French digest, `check --strict`, and a
# send to a local SMTP server that gives each subscriber the digest of their `lang` column.
# Needs `./dev sample` (or `./dev test`) run once for .venv/. Usage: scripts/languages_demo.sh
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$REPO/.venv/bin}
export PATH=$BIN:$PATH
W=$(mktemp -d -t digest-languages-XXXXXX); cd "$W"
export HOME=$W
say() { printf '\n$ %s\n' "$*"; "$@" 2>&1; }
say digest init newsletter; cd newsletter
cat >> digest.toml <<'TOML'

[languages.fr]
title = "Nos nouvelles"
intro = "Les nouvelles du mois, en un seul courriel."
subject = "{{ title }} : {{ window.label }}"
order = ["Actualités"]
TOML
d1=$(date -u -d '-3 days' -R); d2=$(date -u -d '-2 days' -R)
cat > fr.xml <<XML
<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
  <title>Nos actualités</title><link>https://example.org/fr/</link><description>Actualités</description>
  <language>fr-FR</language>
  <item><title>Assemblée générale le 12 juin</title><link>https://example.org/fr/ag</link>
    <guid>fr-ag-2027</guid><pubDate>$d1</pubDate><category>Actualités</category>
    <description><![CDATA[<p>Les membres se réunissent à Lyon pour voter le budget 2027. <b>Inscrivez-vous</b> avant le 1er juin.</p>]]></description></item>
  <item><title>Un nouveau partenaire</title><link>https://example.org/fr/partenaire</link>
    <guid>fr-partenaire</guid><pubDate>$d2</pubDate><category>Actualités</category>
    <description>Une coopérative de Dakar nous rejoint.</description></item>
</channel></rss>
XML
say digest import fr.xml --category Actualités
say digest build --last 30d
say digest check --last 30d --strict
printf "email,name,lang\nann@example.org,Ann,fr\nbob@example.org,Bob,en\ncleo@example.org,Cléo,fr-CA\n" > subscribers.csv
mkdir -p "$W"/sink/{cur,new,tmp}
python -m aiosmtpd -n -l 127.0.0.1:8028 -c aiosmtpd.handlers.Mailbox "$W/sink" >/dev/null 2>&1 & SINK=$!
trap 'kill $SINK 2>/dev/null' EXIT
sleep 1
export DIGEST_SMTP_HOST=127.0.0.1 DIGEST_SMTP_PORT=8028 DIGEST_SMTP_SECURITY=none
export DIGEST_UNSUBSCRIBE_MAILTO=unsubscribe@example.org
say digest send --last 30d --subscribers subscribers.csv --yes
echo; echo "# what each subscriber received:"
python - "$W/sink" <<'PY'
import email, email.policy, glob, sys
for path in sorted(glob.glob(sys.argv[1] + "/new/*")):
    m = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
    text = m.get_body(("plain",)).get_content()
    greeting = next(line for line in text.splitlines()[2:] if line.strip())
    print(f"{m['To']}: {m['Subject']!s}  /  {greeting}")
PY
