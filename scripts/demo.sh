#!/bin/sh
# demo.sh BUILD - show a newcomer what stsproxy does.
set -eu
BIN="$1/stsproxy"
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "stsproxy $("$BIN" --version | cut -d' ' -f2): a transparent SMTP proxy that enforces MTA-STS"
"$BIN" --help

say "Checking a domain's _mta-sts TXT record (RFC 8461 section 3.1):"
echo "\$ stsproxy check txt 'v=STSv1; id=20261128T000000;'"
"$BIN" check txt 'v=STSv1; id=20261128T000000;' || true

say "Checking a policy file (RFC 8461 section 3.2):"
printf 'version: STSv1\nmode: enforce\nmx: mail.example.net\nmx: *.mx.example.net\nmax_age: 604800\n' |
	tee /dev/stderr | "$BIN" check policy - || true

say "Which MX hosts a pattern admits (RFC 8461 section 4.1):"
for h in a.mx.example.net b.a.mx.example.net; do
	if "$BIN" check mx '*.mx.example.net' "$h"; then
		echo "  $h matches *.mx.example.net"
	else
		echo "  $h does not match *.mx.example.net"
	fi
done
