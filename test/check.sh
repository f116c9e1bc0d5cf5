#!/usr/bin/env bash
# The checks that CI runs before the tests; `make vet` runs the same. Tools
# at pinned versions come from test/tools.sh. Steps, in this order:
#   fmt          gofmt -l on every tracked .go file
#   vet          go vet ./...
#   tidy         go mod tidy -diff: go.mod and go.sum as `go mod tidy` leaves them
#   generated    api/ regenerated from api/samd/v1/samd.proto equals what is
#                committed, and the proto only appends (api/samdv1's
#                TestAPIAppendOnly against api/samd/v1/samd.snapshot.json)
#   staticcheck  staticcheck ./...
#   govulncheck  fails on a known vulnerability that samd's code calls, of a
#                dependency module or of the standard library of the Go in
#                test/toolchain.env (README: Development and tests)
# Usage: test/check.sh [STEP]...   (no argument: all). Every step runs; the
# run fails if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/toolchain.env
root=$PWD
bin="$root/.tools/bin"

fmt() {
  local files
  files=$(gofmt -l $(git ls-files '*.go')) || return 1
  [ -z "$files" ] || { echo "gofmt would change:"; echo "$files"; return 1; }
}

vet() { go vet ./...; }

tidy() {
  go mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy and commit the result"; return 1; }
}

generated() {
  local tmp status=0 f
  tmp=$(mktemp -d)
  bash api/generate.sh "$tmp" || { rm -rf "$tmp"; return 1; }
  # Every generated file equals the committed one, and no committed file
  # is left over from a message or service that is gone.
  for f in $({ (cd "$tmp" && find . -name '*.go' | sed 's|^\./||') && (cd api && git ls-files '*.pb.go' '*.connect.go'); } | sort -u); do
    if ! diff -u "api/$f" "$tmp/$f" >/dev/null 2>&1; then
      echo "api/$f differs from what api/samd/v1/samd.proto generates:"
      diff -u "api/$f" "$tmp/$f" | head -40
      status=1
    fi
  done
  rm -rf "$tmp"
  [ "$status" = 0 ] || { echo "run api/generate.sh and commit the result"; return 1; }
  go test -count=1 -run 'TestAPIAppendOnly|TestAppendOnlyRules' ./api/samdv1
}

staticcheck() { "$bin/staticcheck" ./...; }

# The findings of govulncheck's JSON, one line per vulnerability and module:
# reach (called: samd's code calls a vulnerable function; imported: it
# imports the package but calls none; required: only the module is in the
# build), module, OSV id, fixed version, packages, summary.
# shellcheck disable=SC2016
findings='
  (map(select(.osv) | {key: .osv.id, value: .osv.summary}) | from_entries) as $summary
  | map(select(.finding) | .finding)
  | group_by([.osv, .trace[0].module])[]
  | [ (if any(.trace[0].function != null) then "called"
       elif any(.trace[0].package != null) then "imported"
       else "required" end),
      .[0].trace[0].module, .[0].osv, (.[0].fixed_version // "none"),
      (map(.trace[0].package // empty) | unique | join(" ")),
      $summary[.[0].osv] ]
  | @tsv'

govulncheck() {
  local out report
  out=$(mktemp)
  "$bin/govulncheck" -db "file://$root/.tools/vulndb" -format json ./... >"$out" || { rm -f "$out"; return 1; }
  report=$(jq -r -s "$findings" "$out") || { rm -f "$out"; return 1; }
  rm -f "$out"
  vulnreport "$report"
}

# vulnreport FINDINGS: prints the findings and fails on a called one, in a
# dependency or in the standard library of the Go samd is built with.
vulnreport() {
  local called std other
  called=$(awk -F'\t' '$1 == "called" && $2 != "stdlib" && $2 != "toolchain"' <<<"$1")
  std=$(awk -F'\t' '$1 == "called" && ($2 == "stdlib" || $2 == "toolchain")' <<<"$1")
  other=$(awk -F'\t' 'NF && $1 != "called"' <<<"$1")
  if [ -n "$std" ]; then
    echo "FAIL: the standard library of $(go env GOVERSION) has $(wc -l <<<"$std") vulnerabilities reached from samd's code; move test/toolchain.env to $(cut -f4 <<<"$std" | grep -v none | sort -V | tail -1 | sed 's/^v/go/') or later:"
    awk -F'\t' '{printf "  %s %s (fixed in %s): %s\n", $3, $5, $4, $6}' <<<"$std"
  fi
  if [ -n "$other" ]; then
    echo "vulnerabilities samd's code does not call (no failure):"
    awk -F'\t' '{printf "  %s %s %s (fixed in %s): %s\n", $1, $2, $3, $4, $6}' <<<"$other"
  fi
  if [ -n "$called" ]; then
    echo "FAIL: dependencies with vulnerabilities that samd's code calls (upgrade them):"
    awk -F'\t' '{printf "  %s %s (fixed in %s) in %s: %s\n", $2, $3, $4, $5, $6}' <<<"$called"
  fi
  [ -z "$called" ] && [ -z "$std" ] || return 1
  echo "no called vulnerability, in the dependencies or in the standard library of $(go env GOVERSION)"
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(fmt vet tidy generated staticcheck govulncheck)
failed=()
for step in "${steps[@]}"; do
  case $step in
  staticcheck | govulncheck)
    bash test/tools.sh lint || exit 1
    [ "$step" = govulncheck ] && { bash test/tools.sh vulndb || exit 1; }
    ;;
  fmt | vet | tidy | generated) ;;
  *) echo "check: unknown step $step (fmt vet tidy generated staticcheck govulncheck)" >&2; exit 2 ;;
  esac
  echo "== check $step"
  start=$SECONDS
  if "$step"; then
    echo "-- $step ok ($((SECONDS - start)) s)"
  else
    echo "-- $step FAILED ($((SECONDS - start)) s)"
    failed+=("$step")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "check: failed: ${failed[*]}"
  exit 1
fi
