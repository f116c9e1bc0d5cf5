#!/usr/bin/env bash
# Installs what samd's tests need when it is missing: SoftHSM2 (the test
# token), OpenSSL (the independent verifier), PostgreSQL (the cluster
# state store) and headless Chromium with NSS's certutil and pk12util (the
# officers' console's browser tests). Debian packages; needs root for
# apt-get.
set -euo pipefail
need=()
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v openssl >/dev/null || need+=(openssl)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
# PostgreSQL for the state/postgres tests (test/postgres/pgtest starts a
# throwaway cluster with Debian's initdb and pg_ctl).
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# Chromium, driven through the DevTools protocol by test/e2e's console
# tests, with the officer's certificate in an NSS database of its own.
command -v chromium >/dev/null || need+=(chromium)
command -v pk12util >/dev/null && command -v certutil >/dev/null || need+=(libnss3-tools)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need[*]}; run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need[@]}" >&2
fi
