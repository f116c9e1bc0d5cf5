#!/usr/bin/env bash
# Regenerates the Go code from the .proto files. Needs protoc (Debian:
# protobuf-compiler), protoc-gen-go and protoc-gen-connect-go on PATH:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
set -euo pipefail
cd "$(dirname "$0")"
PATH="$(go env GOPATH)/bin:$PATH"
protoc -I . \
  --go_out=. --go_opt=module=github.com/samd-io/samd/api \
  --connect-go_out=. --connect-go_opt=module=github.com/samd-io/samd/api \
  samd/v1/*.proto
