// Package part19 owns the Håndbok 206 Part 19 transaction file format
// (Transaction Exchange Specification, v1, March 2011): file names
// (§3.1 "Transaction Files Naming Convention") and their sequences, the
// XDR batch file (§3.1 "XDR encoded transaction data"), and the end file
// that carries the signer's certificate and signature (§4.1: integrity,
// authentication, non-repudiation). It signs a back office's file and
// verifies one for the clearing house, streaming, in constant memory.
//
// # File names
//
// XXYYYYZU.NNNNNNNNN, 18 characters (see [Name]): XX the sender's
// hardware type (TR, MW, IO; others only when configured), YYYY the
// sender's PTOID (four decimal digits), Z the file type (1 CSC, 2 CT; an
// XML file always 1), U the DIS version (A–Z), NNNNNNNNN the sequence
// number, "incremented by 1 for each new transaction file ... reset to 0
// at its upper limit": 999999999 is followed by 000000000 ([Next]).
// Sequences are kept per [Series]: hardware type, PTOID and file type.
// [CheckSequences] reports gaps, duplicates and late arrivals across the
// wrap.
//
// # The XDR file, byte for byte
//
// Every item is XDR (RFC 4506): big-endian, in blocks of four bytes.
//
//	offset  bytes  field                 seed (§3.1)                         samd
//	0       4      File Header Tag       "Enum 1*", "1 = CSC transaction     00 00 00 01 or 00 00 00 02;
//	                                     2 = CT Transaction", "coded on 1    must be the name's Z
//	                                     byte, but ... padded up to 4 bytes
//	                                     for XDR compatibility"
//	4       4      File creation date    "Uint 4 ... The time stamp is       seconds since
//	                                     based on the Coordinated            1970-01-01T00:00:00Z
//	                                     Universal Time (UTC)"
//	8       4      File event type       "Enum 1* ... The event type must    00 00 00 01
//	                                     be 1"
//	12      4      End File position     "End file Position from the file    E, the offset of the
//	                                     start, after all messages are       end file
//	                                     encoded"
//	16      E-16   messages              "1...n messages composed with: A    see below
//	                                     message Header, Transaction data"
//	E       ...    end file              "End file (described in Appendix    see below
//	                                     A): Certificate, Signature"
//
// Each message:
//
//	0       4      Message number        "Uint 4 ... Sequential number of message issued from the original equipment"
//	4       4      Report date           "Uint 4", UTC: seconds since 1970-01-01T00:00:00Z
//	8       4      Device ID             "String 3": three bytes, then one zero byte of XDR fill
//	12      4      Complement Device ID  "Uint 4"
//	16      L      transaction           "Main header, Data transaction (described in Appendix A)"
//
// The end file, at E (see the layout in endfile.go):
//
//	E       4+c+f  certificate           opaque<16384>: the signer's X.509 certificate, DER
//	        4+a+f  algorithm             opaque<128>: DER AlgorithmIdentifier of the signature
//	        4+d+f  digest                opaque<64>: the algorithm's hash of bytes [0, E)
//	        4      trace present         XDR bool: 1 in files samd signs, 0 in others'
//	        4+i+f    instance            string<255>: the signing samd's instance id
//	        8        counter             unsigned hyper: the signer's counter
//	        4+n+f    file                string<18>: the name signed under
//	S       4+s+f  signature             opaque<1024>: over bytes [0, S)
//	(end of file)
//
// (f is the zero fill to a multiple of four.)
//
// # Decisions where the seed is silent
//
//   - The one-byte enums "padded up to 4 bytes for XDR compatibility" are
//     XDR integers, 00 00 00 TT: an XDR enum is a four-byte integer
//     (RFC 4506 §4.3) and XDR has no one-byte item; bits above the byte
//     are refused (ReasonBadHeader). One place: [DecodeHeader].
//   - Dates are "based on ... UTC" with no epoch given: seconds since the
//     Unix epoch ([Header.CreatedTime]).
//   - "String 3" is XDR fixed-length opaque[3] with one zero fill byte,
//     not a counted string<3>: the seed's Length column gives bytes per
//     field, and the message header is then four words like the file
//     header. One place: [DecodeMessageHeader].
//   - Appendix A (the transactions and the end file) is not in the seed.
//     The transactions are not read, only walked, when a deployment gives
//     [BodyLengths] (where the type is, and each type's length).
//   - The end file: the seed names "Certificate, Signature", in that
//     order. samd writes the certificate as opaque<> (the seed's CRL
//     footer gives a certificate 2048 bytes and a signature 128 bytes —
//     RSA-1024; samd's RSA-3072 and ECDSA signatures do not fit fixed
//     fields, so both are counted), and adds three items between them: the
//     algorithm as an AlgorithmIdentifier (as the seed's CRL names its
//     "Algorithm identifier ... 1.2.840.113549.1.1.4 (RSA/MD5)", §4.2.3),
//     the digest of the bytes before E (which tells a changed file,
//     ReasonTampered, from a wrong signature, ReasonBadSignature) and
//     samd's trace.
//   - "the signature over every byte before that position": the signature
//     covers every byte before the signature field — the header, the
//     messages, and the end file's certificate, algorithm, digest and
//     trace — so the certificate, the algorithm and the trace cannot be
//     changed without breaking it, and `head -c S file | openssl dgst
//     -sha256 -verify pub.pem -signature sig.bin` checks it without samd.
//
// # Signing and verifying
//
// [Prepare] reads a back office's file (header and messages, no end
// file), checks the header first, and hashes the rest; [Prepared.Sign]
// then makes the end file with a crypto.Signer (the key stays in the
// HSM), so that the caller reserves the signer's counter only for a file
// that will be signed. [Verify] reads a whole file and answers with a
// [Result] and a stable [Reason]. samd signs with ECDSA P-256/SHA-256,
// P-384/SHA-384, RSASSA-PSS/SHA-256 or RSASSA-PKCS1-v1_5/SHA-256 ([Algorithm]),
// never MD5 or SHA-1; it verifies RSA/MD5 and RSA/SHA-1 only when the
// caller allows legacy algorithms for the sender.
//
// The package holds no state and reads no clock: the caller passes the
// time and the randomness. Values are immutable; Prepared is for one
// goroutine.
//
// Non-goals: certificate chains, validity, revocation, the sender's
// binding to the certificate's operator and renamed files are the
// caller's (Result gives the certificate, the trace and the name); so is
// the durable reservation of sequence numbers and counters; so is the
// content of the transactions (Appendix A) and the XML format (Appendix C).
package part19
