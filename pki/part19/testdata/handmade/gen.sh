#!/bin/sh
# Makes TR00041A.000000007, a small Håndbok 206 Part 19 XDR file, with
# the shell, xxd and OpenSSL only (none of samd's code). The file header
# and the three messages are the hex below, explained byte by byte in
# README.md; the transactions are made up (Appendix A is not in the seed).
# The end file follows the package documentation: a throwaway ECDSA P-256
# key's self-signed certificate (signer.pem), the AlgorithmIdentifier
# ecdsa-with-SHA256, the SHA-256 of the bytes before the End File
# position, samd's trace (instance "samd-handmade", counter 7, the file's
# name), and `openssl dgst -sha256 -sign` over every byte before the
# signature field. The key is not kept. Run from this directory: sh gen.sh
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
f=TR00041A.000000007
hex() { printf '%s' "$*" | tr -d ' \n' | xxd -r -p; }
fill() { i=0; while [ $i -lt $(((4 - $1 % 4) % 4)) ]; do printf '\000'; i=$((i + 1)); done; }
opaque() { n=$(wc -c < "$1"); hex "$(printf '%08x' "$n")"; cat "$1"; fill "$n"; }

hex '
00000001 69689e80 00000001 00000074
00000029 69689e08 56303100 00000000  00000001 0000001e 0000000a 0000000b
0000002a 69689e44 56303100 00000000  00000001 0000001f 0000000c 0000000d 0000000e
00000007 69689e44 56303200 00000003  00000001 0000001e 0000000f 00000010
' > "$tmp/content"

openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$tmp/key.pem" -out signer.pem \
	-subj "/CN=part19 handmade test signer" -days 36500 2>/dev/null
openssl x509 -in signer.pem -outform DER -out "$tmp/cert.der"
hex 300a06082a8648ce3d040302 > "$tmp/alg.der"        # ecdsa-with-SHA256, RFC 5758 §3.2
openssl dgst -sha256 -binary "$tmp/content" > "$tmp/digest"
printf 'samd-handmade' > "$tmp/instance"
printf '%s' "$f" > "$tmp/name"
{
	cat "$tmp/content"
	opaque "$tmp/cert.der"
	opaque "$tmp/alg.der"
	opaque "$tmp/digest"
	hex 00000001                                    # trace present
	opaque "$tmp/instance"
	hex 0000000000000007                            # counter
	opaque "$tmp/name"
} > "$tmp/region"
openssl dgst -sha256 -sign "$tmp/key.pem" -out "$tmp/sig" "$tmp/region"
{ cat "$tmp/region"; opaque "$tmp/sig"; } > "$f"
xxd "$f" > "$f.hex"
