module github.com/samd-io/samd

go 1.26.8

require github.com/miekg/pkcs11 v1.1.2
