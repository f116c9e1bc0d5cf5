#!/bin/sh
# Regenerates the CRL test data with OpenSSL (not samd's code): a CA, a
# second CA, two leaf certificates of the first, and a CRL of the first CA
# that revokes leaf-revoked.pem (keyCompromise) with nextUpdate 30 days
# after its thisUpdate. The tests pass their own "now", so the files never
# expire. Run from this directory: sh gen.sh
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ca in ca other-ca; do
	openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/$ca.key"
	openssl req -new -x509 -key "$tmp/$ca.key" -subj "/CN=samd test $ca" -days 3650 \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$ca.pem"
done
for leaf in leaf-good leaf-revoked; do
	openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/$leaf.key"
	openssl req -new -key "$tmp/$leaf.key" -subj "/CN=$leaf" -out "$tmp/$leaf.csr"
	openssl x509 -req -in "$tmp/$leaf.csr" -CA ca.pem -CAkey "$tmp/ca.key" -set_serial "0x$(openssl rand -hex 8)" -days 3650 -out "$leaf.pem"
done
cat > "$tmp/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $tmp/index.txt
crlnumber = $tmp/crlnumber
default_md = sha256
default_crl_days = 30
CNF
: > "$tmp/index.txt"
echo 01 > "$tmp/crlnumber"
openssl ca -batch -config "$tmp/ca.cnf" -keyfile "$tmp/ca.key" -cert ca.pem -revoke leaf-revoked.pem -crl_reason keyCompromise
openssl ca -batch -config "$tmp/ca.cnf" -keyfile "$tmp/ca.key" -cert ca.pem -gencrl -out ca.crl.pem
openssl ca -batch -config "$tmp/ca.cnf" -keyfile "$tmp/other-ca.key" -cert other-ca.pem -gencrl -out other-ca.crl.pem 2>/dev/null || true
