#!/usr/bin/env bash
# mktoken.sh DIR [LABEL] [PIN]
#
# Makes a throwaway SoftHSM2 token in DIR, with its own softhsm2.conf, and
# prints the environment a caller needs (SOFTHSM2_CONF, SAMD_PKCS11_MODULE,
# the token label and the path of a PIN file) as shell assignments.
# Installs SoftHSM2 from Debian when it is missing and we are root.
# It never touches the system-wide token directory.
set -euo pipefail

dir=${1:?usage: mktoken.sh DIR [LABEL] [PIN]}
label=${2:-samd-test}
pin=${3:-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}

find_module() {
  for p in /usr/lib/softhsm/libsofthsm2.so \
           /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
           /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
           /usr/local/lib/softhsm/libsofthsm2.so; do
    [ -f "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

if ! command -v softhsm2-util >/dev/null || ! find_module >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "mktoken: installing softhsm2" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >&2 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >&2; }
  else
    echo "mktoken: SoftHSM2 is missing; install the Debian package softhsm2" >&2
    exit 3
  fi
fi
module=$(find_module)

mkdir -p "$dir/tokens"
chmod 700 "$dir" "$dir/tokens"
cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"

# The PIN goes to a file readable only by us; samd reads it from there.
umask 077
printf '%s' "$pin" >"$dir/pin"
softhsm2-util --init-token --free --label "$label" --so-pin "$pin$pin" --pin "$pin" >/dev/null

printf 'SOFTHSM2_CONF=%q\n' "$SOFTHSM2_CONF"
printf 'SAMD_PKCS11_MODULE=%q\n' "$module"
printf 'SAMD_TOKEN_LABEL=%q\n' "$label"
printf 'SAMD_PIN_FILE=%q\n' "$dir/pin"
