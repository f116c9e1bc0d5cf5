#!/usr/bin/env bash
# Coverage for `make cover`, reported, never gated. Two sources, merged
# with `go tool covdata`:
#   unit  go test -cover on every package but test/e2e, counted across all
#         of samd's packages (-coverpkg)
#   e2e   the e2e tests run against a samd built with `go build -cover`
#         (SAMD_BIN); every samd process they start writes its counters
#         to GOCOVERDIR when it exits (a SIGKILLed one writes nothing)
# Prints the percentage of statements per package and in total, for each
# source and merged. The data stays in .cover/: cover.out opens with
# `go tool cover -html=.cover/cover.out`.
# E2E_RUN: a -run pattern for the e2e tests (default: all).
# UNIT_PKGS: the unit tests' packages (default: all but test/e2e; "none": skip).
set -uo pipefail
cd "$(dirname "$0")/.."
. test/toolchain.env
dir=$PWD/.cover
rm -rf "$dir"
mkdir -p "$dir/unit" "$dir/e2e"
export SAMD_REQUIRE_SOFTHSM=1 SAMD_REQUIRE_POSTGRES=1
status=0

pkgs=${UNIT_PKGS:-$(go list ./... | grep -v '/test/e2e$')}
if [ "$pkgs" != none ]; then
  echo "== unit tests (go test -cover)"
  # shellcheck disable=SC2086
  go test -count=1 -timeout 30m -cover -coverpkg=github.com/samd-io/samd/... $pkgs -args -test.gocoverdir="$dir/unit" || status=1
fi

echo "== e2e tests through a samd built with -cover"
go build -cover -o "$dir/samd" ./cmd/samd || exit 1
run=()
[ -z "${E2E_RUN:-}" ] || run=(-run "$E2E_RUN")
SAMD_BIN="$dir/samd" GOCOVERDIR="$dir/e2e" go test -count=1 -timeout 30m "${run[@]}" ./test/e2e || status=1

# percent NAME DIRS: "package<TAB>percent" lines of one source, and a total.
percent() {
  local out="$dir/$1.out"
  go tool covdata percent -i="$2" | awk -v src="$1" '{for (i = 1; i < NF; i++) if ($i == "coverage:") print src "\t" $1 "\t" $(i + 1)}'
  go tool covdata textfmt -i="$2" -o "$out"
  go tool cover -func="$out" | awk -v src="$1" '$1 == "total:" {print src "\ttotal\t" $NF}'
}
sources=()
inputs=()
for s in unit e2e; do
  if [ -n "$(ls -A "$dir/$s")" ]; then
    sources+=("$s")
    inputs+=("$dir/$s")
  fi
done
if [ ${#sources[@]} = 0 ]; then
  echo "cover: no coverage data written"
  exit 1
fi
{
  for s in "${sources[@]}"; do percent "$s" "$dir/$s"; done
  percent both "$(IFS=,; echo "${inputs[*]}")"
} >"$dir/percent.tsv"
cp "$dir/both.out" "$dir/cover.out"

echo "== coverage of statements (no threshold)"
awk -F'\t' -v cols="${sources[*]} both" '
  BEGIN { n = split(cols, col, " ") }
  NR == FNR { order[++m] = $1; next }
  { pct[$1, $2] = $3 }
  END {
    printf "%-50s", "package"; for (i = 1; i <= n; i++) printf " %7s", col[i]; print ""
    order[++m] = "total"
    for (j = 1; j <= m; j++) {
      p = order[j]; name = p; sub(/^github.com\/samd-io\/samd\/?/, "", name); if (name == "") name = "samd"
      printf "%-50s", name
      for (i = 1; i <= n; i++) printf " %7s", ((col[i], p) in pct ? pct[col[i], p] : "-")
      print ""
    }
  }' <(cut -f2 "$dir/percent.tsv" | grep -vx total | sort -u) "$dir/percent.tsv"
[ "$status" = 0 ] || echo "cover: some tests failed (see above)"
exit "$status"
