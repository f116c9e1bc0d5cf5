// Package lists makes and reads negative lists — card hotlists,
// application and product blacklists, action lists — as signed, versioned
// documents, with deltas between versions and signed receipts.
//
// The sources: ITSO TS1000 Part 6 "Specifies configuration messages such
// as Hotlists and Actionlists"; Håndbok 206-2 §2.6.2 counts "Sperreliste
// kontroll" in every tap's time at the card reader, and §3 makes the
// product owner distribute blacklists and the receivers confirm them:
// "Det er produkteier for RK-avtale sitt ansvar å distribuere svartelister
// for applikasjoner og produkter. Produkteiere for Enkeltbilletter skal
// bekrefte mottaket av slike lister."; Håndbok 206 Part 19 §1.3.2 lists
// transaction type 36, "CSC Black list Management — Opposition management
// with blacklist and for CSC" (what a terminal reports after acting on a
// list; its layout is in Part 19's Appendix A, which the project does not
// have); APTA Part II Table 6 RtsTransAppStatus gives the status a
// terminal writes: "0 = … unblocked or active 1 = … negative-listed,
// blocked and cannot be unblocked 2 = … negative-listed, blocked but can
// be unblocked 3 = Reserved" (see [Action]).
//
// # Decisions
//
// None of the seeds gives a list's encoding or signature (ITSO Part 6's
// message layouts and Part 19's appendices are not available), so samd
// decides, once:
//
//   - A list version is one binary document in the canonical layout below,
//     signed by a detached CMS SignedData (RFC 5652, package pki/cms) made
//     with the owner's list-signer key in the HSM. The signer's certificate
//     and intermediates travel inside the CMS, so a terminal verifies
//     offline with the scheme root and nothing else, with samd's code or
//     with OpenSSL (a compact signature over the encoding would need a
//     second, home-made verifier; CMS is already how samd signs
//     transaction files):
//
//     openssl cms -verify -binary -inform DER -in list.p7s -content list.bin \
//     -CAfile root.pem -out /dev/null
//
//     Adding -policy 2.25.219054816513464097787203650855276422174
//     -explicit_policy makes OpenSSL demand the list-signer profile too,
//     when the issuing CAs carry anyPolicy (RFC 5280 §6.1).
//
//   - The signature binds owner, kind and versions because the header that
//     carries them is inside the signed content; the trace attribute
//     (instance, counter, Header.Name) only says which samd signed.
//
//   - A list signer is a certificate with the policy [OIDListSigner] and a
//     back-office principal naming the owner ([CheckSigner]). Its chain is
//     checked at the list's issue time (the signingTime samd writes), and a
//     list may not be valid beyond the signer's certificate: a key kept
//     after its certificate expired cannot back-date a list that stays
//     valid.
//
//   - Deltas hold puts (entries added or changed) and removes; a delta also
//     carries the list digests of its base and of its result, so a receiver
//     that applies it checks both entry by entry ([Apply]).
//
//   - A receipt acknowledges the list digest of a version — the same
//     whether the receiver got it whole or as a delta.
//
// # Layout
//
// All integers are unsigned big-endian; times are Unix seconds (UTC) in 8
// bytes, at most 253402300799 (9999-12-31T23:59:59Z); each variable field
// is preceded by its length in one byte. There is exactly one encoding of
// a list: the decoder refuses anything else (unsorted or repeated keys,
// fields outside their bounds, a wrong count or digest, bytes after the
// end), so equal lists are equal bytes.
//
// Header:
//
//	offset  size  field
//	0       4     magic "SMNL" (53 4D 4E 4C)
//	4       1     format version, 01
//	5       1     kind: 01 card hotlist, 02 application blacklist,
//	              03 product blacklist, 04 action list
//	6       1     n, the owner's length, 1..64
//	7       n     owner, an operator id (A-Z a-z 0-9 . _ : -)
//	7+n     8     version, >= 1
//	15+n    8     base version: 0 for a full list; a delta's base, < version
//	23+n    8     issued
//	31+n    8     valid from, >= issued
//	39+n    8     valid until, > valid from
//	47+n          records, then the trailer
//
// Records, in strictly increasing order of (card id, target), each compared
// as unsigned bytes ([Compare]); a key appears once:
//
//	size  field
//	1     op: 01 put (an entry; in a delta, added or changed),
//	      02 remove (deltas only; the key alone)
//	1     c, the card id's length, 1..16
//	c     card id (media serial number, UID)
//	1     t, the target's length, 0..16: 0 in card hotlists, >= 1 in
//	      application and product blacklists
//	t     target: the application or product id
//	      — puts only:
//	1     action: 01 block-permanent (APTA 1), 02 block (APTA 2),
//	      03 unblock (APTA 0; action lists), 80..FF scheme-defined
//	      (action lists)
//	2     reason code (0 unspecified, 1 lost, 2 stolen, 3 corrupted,
//	      4 payment-abuse, 8000..FFFF scheme-defined)
//	8     effective from (0: from the list's validity)
//	1     d, the data's length, 0..255 (0 except in action lists)
//	d     data: a scheme-defined action's parameters
//
// Trailer:
//
//	size  field
//	1     00 (end of records)
//	8     number of records
//	32    list digest of the version this document gives
//	32    (deltas only) list digest of the base version
//
// then the end of the document.
//
// # Digests
//
// The list digest of a version is SHA-256 over the records of its full
// list exactly as they stand in the full document (from the first
// record's op byte to the byte before the trailer); the empty list's is
// SHA-256 of nothing. The document digest — what the CMS messageDigest
// holds — is SHA-256 (SHA-384 for a P-384 signer) of the whole document.
//
// # Receipts
//
//	offset  size  field
//	0       4     magic "SMRC" (53 4D 52 43)
//	4       1     format version, 01
//	5       1     kind
//	6       1     n, the owner's length
//	7       n     owner
//	7+n     8     version
//	15+n    32    list digest of that version
//	47+n    1     m, the receiver's length
//	48+n    m     receiver: samd://principal/<role>/<operator>/<device>
//	              (terminal, back-office or clearing-house)
//	48+n+m  8     time the receiver took the version into use
//
// signed by the receiver's certificate as a detached CMS SignedData.
//
// # Use
//
// A builder streams a version's entries, read in key order from the
// state store, into [WriteFull] (and changes into [WriteDelta], from the
// store's rows or from [Diff] of two full lists), then signs the [Summary]
// with [Sign]. A terminal checks a document against what it holds with
// [Verify], then decodes a full list with [NewDecoder] or merges a delta
// into its list with [Apply], and acknowledges with a [Receipt]. Every step streams: one
// entry of each input in memory, whatever the list's length.
//
// The package holds no state and reads no clock; it is safe for
// concurrent use (a Decoder by one goroutine at a time). Non-goals: where
// entries, versions and digests are stored, who may list what (APTA
// status 1 is the issuer's alone: the authority's policy), issuing
// list-signer certificates, revocation data (Verify asks a function).
package lists
