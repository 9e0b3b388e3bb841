#!/usr/bin/env bash
# The shipped alert rules: `promtool check rules` accepts them, and
# `promtool test rules` shows each alert firing on series past its threshold
# and staying quiet on healthy ones.
#   rules_case.sh RULES.yml TESTS.yml
set -uo pipefail
rules=$1 tests=$2
command -v promtool >/dev/null || { echo "SKIP: promtool is not installed (scripts/deps.sh installs prometheus)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$(promtool check rules "$rules" 2>&1) || { echo "$out"; echo "promtool check rules rejected $rules" >&2; exit 1; }
echo "$out"
case $out in *"SUCCESS: 6 rules found"*) ;; *) echo "expected 6 rules in $rules" >&2; exit 1 ;; esac
# promtool resolves rule_files relative to the test file: test a copy beside the rules.
cp "$rules" "$work/mixl-alerts.yml"
cp "$tests" "$work/alerts_test.yml"
(cd "$work" && promtool test rules alerts_test.yml) || { echo "alert rule tests failed" >&2; exit 1; }
