#!/bin/sh
# cli_check.sh - "stsproxy check txt|policy|mx": exit codes and output for
# good and bad input, through the real binary named by $STSPROXY.
# Prints "ok - name" or "not ok - name" per case; exits non-zero on any failure.

set -u

if [ -z "${STSPROXY:-}" ] || [ ! -x "$STSPROXY" ]; then
	echo "not ok - setup: STSPROXY must name the stsproxy binary" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_check.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM

failures=0
total=0

# expect NAME RC STDOUT STDERR CMD...
#   STDOUT: the exact standard output, or "*" for any.
#   STDERR: a fixed string standard error must contain, or "" for empty.
# The command reads the file named by $STDIN_FILE when set, else /dev/null.
expect() {
	name=$1 want_rc=$2 want_out=$3 want_err=$4
	shift 4
	total=$((total + 1))
	"$@" <"${STDIN_FILE:-/dev/null}" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	why=""
	if [ "$rc" -ne "$want_rc" ]; then
		why="exit $rc, want $want_rc"
	elif [ "$want_out" != "*" ] && [ "$(cat "$tmp/out")" != "$want_out" ]; then
		why="stdout \"$(cat "$tmp/out")\", want \"$want_out\""
	elif [ -z "$want_err" ] && [ -s "$tmp/err" ]; then
		why="unexpected stderr \"$(cat "$tmp/err")\""
	elif [ -n "$want_err" ] && ! grep -qF -- "$want_err" "$tmp/err"; then
		why="stderr \"$(cat "$tmp/err")\" lacks \"$want_err\""
	fi
	if [ -z "$why" ]; then
		echo "ok - $name"
	else
		echo "not ok - $name: $why"
		failures=$((failures + 1))
	fi
}

S=$STSPROXY

# --- txt (RFC 8461 section 3.1) ----------------------------------------------
expect txt_valid 0 "id=20160831085700Z" "" "$S" check txt "v=STSv1; id=20160831085700Z;"
expect txt_version_space 0 "id=abc" "" "$S" check txt "v=STSv1 ; id=abc"
expect txt_first_id_wins 0 "id=one" "" "$S" check txt "v=STSv1; id=one; id=two"
expect txt_extension_ignored 0 "id=abc" "" "$S" check txt "v=STSv1; id=abc; ext=1;"
expect txt_id_missing 1 "" "invalid: id: missing" "$S" check txt "v=STSv1;"
expect txt_id_too_long 1 "" "invalid: id: longer than 32" \
	"$S" check txt "v=STSv1; id=abcdefghijklmnopqrstuvwxyz0123456"
expect txt_empty_field 1 "" "invalid: empty field" "$S" check txt "v=STSv1;; id=abc"
expect txt_not_sts 1 "" "invalid: not an STSv1 record" "$S" check txt "v=spf1 -all"
expect txt_version_case 1 "" "invalid: not an STSv1 record" "$S" check txt "v=stsv1; id=abc"
expect txt_select_one 0 "id=abc" "" "$S" check txt "v=spf1 -all" "v=STSv1; id=abc"
expect txt_select_two 1 "" "invalid: more than one STSv1 record" \
	"$S" check txt "v=STSv1; id=abc" "v=STSv1; id=def"
expect txt_select_none 1 "" "invalid: no STSv1 record" "$S" check txt "v=spf1 -all" "x=y"

# --- policy (sections 3.2 and 3.3) -------------------------------------------
printf 'version: STSv1\r\nmode: enforce\nmx: mail.example.com\nmx: *.Example.NET.\nmax_age: 604800\n' \
	>"$tmp/good.txt"
printf 'version: STSv1\nmode: none\nmax_age: 99999999999\n' >"$tmp/age.txt"
printf 'version: STSv1\nmode: none\nmax_age: 99999999\n' >"$tmp/none.txt"
printf 'version: STSv1\n\nmode: Enforce\nmx: a.example\nmax_age: 60\n' >"$tmp/mode.txt"
printf 'version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmax_age: 60\n' >"$tmp/ip.txt"
printf 'version: STSv1\nmode: testing\nmax_age: 60\n' >"$tmp/nomx.txt"
good_json='{"version":"STSv1","mode":"enforce","mx":["mail.example.com","*.example.net"],"max_age":604800}'

expect policy_valid 0 "$good_json" "" "$S" check policy "$tmp/good.txt"
STDIN_FILE=$tmp/good.txt expect policy_valid_stdin 0 "$good_json" "" "$S" check policy -
expect policy_max_age_clamped 0 \
	'{"version":"STSv1","mode":"none","mx":[],"max_age":31557600}' "" \
	"$S" check policy "$tmp/none.txt"
expect policy_max_age_eleven_digits 1 "" "$tmp/age.txt:3: max_age: expected 1 to 10 digits" \
	"$S" check policy "$tmp/age.txt"
expect policy_mode_case 1 "" "$tmp/mode.txt:3: mode: unknown value \"Enforce\"" \
	"$S" check policy "$tmp/mode.txt"
STDIN_FILE=$tmp/mode.txt expect policy_mode_case_stdin 1 "" "<stdin>:3: mode: unknown value" \
	"$S" check policy -
expect policy_mx_ip_literal 1 "" "$tmp/ip.txt:3: mx: invalid pattern \"192.0.2.1\"" \
	"$S" check policy "$tmp/ip.txt"
expect policy_mx_required 1 "" "mx: required when mode is testing" \
	"$S" check policy "$tmp/nomx.txt"
expect policy_missing_file 1 "" "No such file" "$S" check policy "$tmp/absent.txt"

# --- mx (section 4.1) --------------------------------------------------------
expect mx_exact 0 "match" "" "$S" check mx mx.example.com MX.Example.com.
expect mx_wildcard_one_label 0 "match" "" "$S" check mx "*.example.com" mx1.example.com
expect mx_wildcard_two_labels 1 "no match" "" "$S" check mx "*.example.com" a.b.example.com
expect mx_wildcard_bare_domain 1 "no match" "" "$S" check mx "*.example.com" example.com
expect mx_bad_pattern 2 "" "invalid pattern" "$S" check mx "mx.*.example.com" mx.a.example.com
expect mx_ip_pattern 2 "" "invalid pattern" "$S" check mx "192.0.2.1" 192.0.2.1

# --- usage -------------------------------------------------------------------
expect usage_no_command 2 "" "usage:" "$S" check
expect usage_unknown 2 "" "usage:" "$S" check spf "v=spf1"
expect usage_mx_args 2 "" "usage:" "$S" check mx only-one
expect usage_policy_args 2 "" "usage:" "$S" check policy a b

echo "# $((total - failures))/$total passed"
[ "$failures" -eq 0 ]
