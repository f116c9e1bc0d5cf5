#!/usr/bin/env bash
# Regenerates the Go code from the .proto files, into api/ or into the
# directory given (test/check.sh regenerates into a temporary one and
# compares). Uses protoc (Debian: protobuf-compiler), protoc-gen-go and
# protoc-gen-connect-go at the versions test/tools.sh pins, and installs
# them when missing.
set -euo pipefail
api=$(cd "$(dirname "$0")" && pwd)
out=$(cd "${1:-$api}" && pwd)
bash "$api/../test/tools.sh" proto
PATH="$api/../.tools/bin:$PATH"
cd "$api"
protoc -I . \
  --go_out="$out" --go_opt=module=github.com/samd-io/samd/api \
  --connect-go_out="$out" --connect-go_opt=module=github.com/samd-io/samd/api \
  samd/v1/*.proto
