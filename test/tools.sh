#!/usr/bin/env bash
# Installs the developer tools that test/check.sh (make vet, CI) and
# api/generate.sh use, at pinned versions, into .tools/ of the checkout
# (ignored by git), so that a developer's other versions are never used:
#   lint    staticcheck, govulncheck            .tools/bin  (Go module proxy)
#   proto   protoc-gen-go, protoc-gen-connect-go .tools/bin  (Go module proxy)
#           and protoc                           Debian's protobuf-compiler
#   vulndb  the Go vulnerability database        .tools/vulndb
# Usage: test/tools.sh [lint|proto|vulndb]...   (no argument: all)
# A tool already there at its version, built by the same Go, is kept.
set -euo pipefail

STATICCHECK=v0.8.2            # honnef.co/go/tools
GOVULNCHECK=v1.9.0            # golang.org/x/vuln
PROTOC_GEN_GO=v1.36.12        # google.golang.org/protobuf, as in go.mod
PROTOC_GEN_CONNECT_GO=v1.21.1 # connectrpc.com/connect, as in go.mod
# The vulnerability database is the module golang.org/x/vulndb (its
# data/osv, indexed by its own cmd/indexdb): vuln.go.dev is not reachable
# from here. To refresh it, put the version that
#   go list -m golang.org/x/vulndb@latest
# prints here and commit.
VULNDB=v0.0.0-20261105234957-e22db6528018

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
gover=$(go env GOVERSION)
mkdir -p "$tools/bin"

# goinstall NAME PACKAGE VERSION
goinstall() {
  local stamp="$tools/bin/.$1"
  if [ -x "$tools/bin/$1" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$3 $gover" ]; then
    return
  fi
  echo "tools: $1 $3" >&2
  GOBIN="$tools/bin" go install "$2@$3"
  echo "$3 $gover" >"$stamp"
}

# apt NAME COMMAND: installs Debian's package NAME when COMMAND is missing.
apt() {
  command -v "$2" >/dev/null && return
  if [ "$(id -u)" != 0 ]; then
    echo "tools: $2 is missing; run: sudo apt-get install -y $1" >&2
    exit 1
  fi
  echo "tools: installing $1" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "$1" >&2
}

lint() {
  goinstall staticcheck honnef.co/go/tools/cmd/staticcheck "$STATICCHECK"
  goinstall govulncheck golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK"
  apt jq jq
}

proto() {
  goinstall protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO"
  goinstall protoc-gen-connect-go connectrpc.com/connect/cmd/protoc-gen-connect-go "$PROTOC_GEN_CONNECT_GO"
  apt protobuf-compiler protoc
}

vulndb() {
  local db="$tools/vulndb"
  [ "$(cat "$db/.version" 2>/dev/null)" = "$VULNDB" ] && return
  echo "tools: vulnerability database $VULNDB" >&2
  # Downloaded outside the module, so that go.mod and go.sum stay as they are.
  (cd / && go mod download "golang.org/x/vulndb@$VULNDB")
  rm -rf "$db.new"
  (cd "$(go env GOMODCACHE)/golang.org/x/vulndb@$VULNDB" &&
    GOFLAGS=-mod=mod go run ./cmd/indexdb -vulns data/osv -out "$db.new")
  echo "$VULNDB" >"$db.new/.version"
  rm -rf "$db"
  mv "$db.new" "$db"
}

[ $# -gt 0 ] || set -- lint proto vulndb
for group; do
  case $group in
  lint | proto | vulndb) "$group" ;;
  *) echo "tools: unknown group $group (lint, proto, vulndb)" >&2; exit 2 ;;
  esac
done
