// Package apta owns the APTA UTFS data objects of the Contactless Fare
// Media System Standard, Part II (APTA IT-UTFS-S-002-06): their bit
// numbering, the check value in bits 112–127 (a CRC-16 or a 16-bit DAC),
// the catalogue of object types, and the amounts that value-bearing
// objects carry.
//
// # Objects and bit numbering
//
// "The various objects that are organized within the Standard each
// contain 128 bits or 16 bytes of data" (§4.4). The tables number the bits
// 0 to 127 and place each field by bit range ("RtsRemValue 16 0-65535
// 7-22"). Part II never states the mapping to bytes outright; samd takes
// the one its statements force:
//
//   - Within a field, the highest-numbered bit is the most significant:
//     "bit 127 = Most significant and bit 112 = Least significant" (§5.1
//     Note 2, for the CRC); "Bit 28 = Most Significant Bit, Bit 21 = Least
//     Significant Bit" (Table 6, RtsActionMap); dates put "0-4 = day (1-31)
//     5-8 = month (1-12) 9-15 = year", and "(0000101001011100) = 02/28/05"
//     (§5.12.1.6) is that 16-bit field written most significant bit first.
//   - Bytes come in order: the CRC example is a "14 Byte" stream, "Byte 0"
//     to "Byte 13", over bits 0–111 (§5.1 Note 2).
//
// So bit n is bit n mod 8 of byte n/8, counted from the least significant
// bit; the object is a 128-bit little-endian number ([Object], [Uint],
// [PutUint]). This is also ISO/IEC 13239's bit order (least significant
// bit first), and with it the seed's CRC example, placed in bits 112–127,
// leaves the CRC register at zero over all 16 bytes, as an HDLC frame
// check sequence does.
//
// # CRC mode
//
// "The algorithm used to calculate CRC shall be CR 16 to ISO 13239 where
// bit 127 = Most significant and bit 112 = Least significant. … The
// polynomial used within the algorithm shall be defined by the region …
// Start value for the CRC calculations in both cases is: 0x0000" (§5.1
// Note 2). [CRC16] processes each byte least significant bit first and has
// no final complement: the only parameters under which the seed's example,
// "43 52 43 20 44 45 4D 4F 20 41 50 54 41 21", gives 0x6286 with
// x¹⁶+x¹⁵+x²+1 and 0xA16B with x¹⁶+x¹²+x⁵+1 (testdata/crc.json, with the
// CRC catalogue's CRC-16/ARC and CRC-16/KERMIT check values beside them).
// The CRC goes into bits 112–127: byte 14 its low byte, byte 15 its high
// byte ([SealCRC], [VerifyCRC]). A CRC detects errors; anyone can compute
// one.
//
// # DAC mode
//
// The tables offer "Data Authentication Code [DAC] … for authentication &
// error detection OR CRC for error detection only" in bits 112–127, but
// Part II defines no DAC algorithm: security "is not extensively addressed
// within the text below and such references, where included herein, are
// provide as guidelines and are not to be considered as requirements of
// the Standard" (§4.5; "These security elements are not included in the
// Standard", §4.6). samd decides, once:
//
//   - The DAC is the leftmost 16 bits of the seal profile's full MAC
//     (AES-CMAC in the HSM, or a MAC under an AN10922 per-card key; see
//     [MACer]), as an unsigned number, the MAC's first byte most
//     significant ([DAC]).
//   - It is stored like every field, bit 127 most significant: byte 14 =
//     MAC byte 1, byte 15 = MAC byte 0 ([SealDAC]).
//   - The MAC input is "APTA-DAC" ‖ table number ‖ len ‖ card UID ‖ bits
//     0–111 of the object ‖ the extensions the type covers ([DACInput]),
//     binding the DAC to the type and the card.
//   - [VerifyDAC] compares in constant time and says only "invalid".
//
// # What a check covers
//
// Each type's row for bits 112–127 says what its check is "Calculated on"
// ([Type.Extensions], [Unit.Region]): the core object's bits 0–111, then
// the extension objects, 16 bytes each, in card order.
//
//   - P&TPO: "Calculated on all P&TPOs and P&TPOXs" (Table 11); SV&TPPO:
//     "Calculated on all SV&TPPO Objects including extension" (Table 17).
//     How many (0 or 1) is the object's own RtsExtensionStatus, bit 2.
//   - PIO: "Calculated on all Profile Objects" (Table 6). The PIO is no
//     profile object; samd reads this as the PIO and its PIOXs, like the
//     two rows above, because the PIOX has no check of its own ("RFU 16
//     112-127", Table 7) and a PIO always comes with one or three ("0 = 1
//     Extension 1 = 3 Extensions", RtsPIOExtensions, bit 39), and because
//     tear recovery chooses a PIO by "the highest Sequence Number and a
//     correct CRC" (Table 6), which must cover its extensions too.
//   - PHPOX1: "CRCPHPOX … Calculated on all PHPOX data" (Table 4): a CRC
//     only, over PHPOX1 and the PHPOX2..n whose number the DIO holds; the
//     caller supplies them.
//   - Every other type: the core object only ("Calculated on TAPO data
//     only!", "Calculated only for this PHPO data", "CRC to verify
//     integrity of this object").
//
// Types whose bits 112–127 are data (PHPOX2..n, PIOX, THOX, P&TPOX, SVPOX,
// ALPOX, ALROX, AVPOX) are refused by both modes ([ReasonDataTrailer]);
// DIO and PHPOX1, whose tables offer only a CRC, are refused by the DAC
// mode ([ReasonCRCOnly]).
//
// # Key sets
//
// The key is the seal profile's; this package only sees a [MACer]. §6
// fixes which objects may share one: "The PHPOX shall be placed in a
// separate file with a separate security key", "The TPPO shall be placed
// in a separate file with a separate key set. This separate key set is to
// be disclosed only to the agencies and operators participating in the
// regional implementation", "The SV&TPPOX must be placed within the same
// File as the core SV&TPPO", "The ALRO and ALROX shall occupy a single
// dedicated file with a separate security write key"; and "Each FF
// Product Object may be stored in a separate, Agency-specific file
// protected by a unique key set or the Object may be stored in a common
// file and protected with a shared key set" (§5.10.1). A profile per file
// (per agency, T-Purse, PHPOX, ALRO) with its own key follows that; with
// an AN10922 master key each card has its own.
//
// # Amounts
//
// SV&TPPO (balance, RtsRemValue 7–22, sign bit 6), A&DVO (transaction,
// bits 48–62, sign 63) and THO (transaction, bits 80–94, sign 95) carry
// amounts, as sign and magnitude ([ValueField]). [ValueField.Check],
// [ValueField.CheckChange] and [Type.CheckCurrency] refuse an object
// whose amount or currency is not the authorisation's, with a stable
// [Reason], without any key.
//
// # Strength of a 16-bit DAC
//
// A forged DAC is right once in 65 536 tries. The package cannot count
// tries; its callers must: every failed [VerifyDAC] counts toward samd's
// back-off and toward a per-card limit, and where the card layout allows,
// a full MAC profile (package mac, 4 to 16 bytes) is the stronger choice.
//
// The package does no I/O, reads no clock and holds no state; everything
// in it is safe for concurrent use.
package apta
