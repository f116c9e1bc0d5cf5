#!/bin/sh
# Checks a Part 19 XDR file's signature with OpenSSL alone, as README
# "Transaction files" shows: reads the end file's offsets with od (GNU),
# cuts out the certificate and the signature, and has `openssl dgst
# -verify` check the signature over every byte before the signature field.
# Writes cert.der, pub.pem and sig.bin in the current directory.
#
# usage: sh openssl-verify.sh FILE [openssl dgst options; default -sha256]
#   ECDSA P-384:  -sha384
#   RSA-PSS:      -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto
set -eu
f=$1
shift
[ $# -gt 0 ] || set -- -sha256
u32() { od -An -tu4 --endian=big -j "$1" -N 4 "$f" | tr -d ' '; }  # XDR unsigned int at an offset
fill() { echo $((($1 + 3) / 4 * 4)); }                               # XDR length with its zero fill
E=$(u32 12)                                        # header bytes 12-15: the End File position
n=$(u32 "$E")                                      # certificate: opaque<>
tail -c +$((E + 5)) "$f" | head -c "$n" > cert.der
o=$((E + 4 + $(fill "$n")))
o=$((o + 4 + $(fill "$(u32 $o)")))                 # algorithm: opaque<>
o=$((o + 4 + $(fill "$(u32 $o)")))                 # digest: opaque<>
if [ "$(u32 $o)" = 1 ]; then                       # trace *: instance<>, counter (8), file<>
	o=$((o + 4))
	o=$((o + 4 + $(fill "$(u32 $o)") + 8))
	o=$((o + 4 + $(fill "$(u32 $o)")))
else
	o=$((o + 4))
fi
S=$o                                               # the signature field: opaque<>
tail -c +$((S + 5)) "$f" | head -c "$(u32 "$S")" > sig.bin
openssl x509 -inform DER -in cert.der -pubkey -noout > pub.pem
head -c "$S" "$f" | openssl dgst "$@" -verify pub.pem -signature sig.bin
