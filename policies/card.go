package policies

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// CardCommands is a set of card command codes: the native command byte of
// MIFARE DESFire (the legacy D40 set, EV1, EV2, EV3) and NTAG 424 DNA, as
// CardService/ProtectCommand receives it. A role's set is the allow-list
// of the commands samd protects (MACs or enciphers) for it in a card
// session; the zero value is the empty set, which allows nothing.
type CardCommands [4]uint64

// Has reports whether cmd is in the set.
func (s CardCommands) Has(cmd byte) bool { return s[cmd>>6]&(1<<(cmd&63)) != 0 }

func (s *CardCommands) add(cmd byte) { s[cmd>>6] |= 1 << (cmd & 63) }

// Len is the number of commands in the set.
func (s CardCommands) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// String lists the set as hex codes, e.g. "[3D AD BD]".
func (s CardCommands) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for c := 0; c < 256; c++ {
		if s.Has(byte(c)) {
			if b.Len() > 1 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%02X", c)
		}
	}
	b.WriteByte(']')
	return b.String()
}

// Card command codes that the rules below name.
const (
	CmdChangeKey byte = 0xC4 // DESFire EV1/EV2/EV3, NTAG 424 DNA, D40
)

// cardCommandNames names the native commands of DESFire D40, EV1, EV2,
// EV3 and NTAG 424 DNA (NXP AN12196 Table 4 and AN12343 §6 list them;
// the EV1 codes are those public implementations use). Names are for
// messages and the README; the policy works on codes.
var cardCommandNames = map[byte]string{
	// Card, application and file information.
	0x60: "GetVersion", 0xAF: "AdditionalFrame", 0x51: "GetCardUID", 0x45: "GetKeySettings",
	0x64: "GetKeyVersion", 0x6A: "GetApplicationIDs", 0x6D: "GetDFNames", 0x6E: "FreeMemory",
	0x6F: "GetFileIDs", 0x61: "GetISOFileIDs", 0xF5: "GetFileSettings", 0xF6: "GetFileCounters",
	0xF7: "GetTTStatus", 0x3C: "Read_Sig", 0x69: "GetDelegatedInfo",
	// Data, value and record files, transactions.
	0xBD: "ReadData", 0xAD: "ReadData", 0x3D: "WriteData", 0x8D: "WriteData",
	0x6C: "GetValue", 0x0C: "Credit", 0xDC: "Debit", 0x1C: "LimitedCredit",
	0xBB: "ReadRecords", 0xAB: "ReadRecords", 0x3B: "WriteRecord", 0x8B: "WriteRecord",
	0xDB: "UpdateRecord", 0xBA: "UpdateRecord", 0xEB: "ClearRecordFile",
	0xC7: "CommitTransaction", 0xA7: "AbortTransaction", 0xC8: "CommitReaderID",
	// Administration: keys, settings, configuration, applications, files.
	0xC4: "ChangeKey", 0xC6: "ChangeKeyEV2", 0x56: "InitializeKeySet", 0x57: "FinalizeKeySet",
	0x55: "RollKeySet", 0x54: "ChangeKeySettings", 0x5F: "ChangeFileSettings", 0x5C: "SetConfiguration",
	0xCA: "CreateApplication", 0xC9: "CreateDelegatedApplication", 0xDA: "DeleteApplication",
	0xCD: "CreateStdDataFile", 0xCB: "CreateBackupDataFile", 0xCC: "CreateValueFile",
	0xC1: "CreateLinearRecordFile", 0xC0: "CreateCyclicRecordFile", 0xCE: "CreateTransactionMACFile",
	0xDF: "DeleteFile", 0xFC: "FormatPICC", 0x5A: "SelectApplication",
	// Authentication: samd runs these itself (BeginAuth, FinishAuth).
	0x0A: "Authenticate", 0x1A: "AuthenticateISO", 0xAA: "AuthenticateAES",
	0x71: "AuthenticateEV2First", 0x77: "AuthenticateEV2NonFirst",
}

// CardCommandName names a card command code ("ChangeKey"), or returns
// "unknown".
func CardCommandName(cmd byte) string {
	if n, ok := cardCommandNames[cmd]; ok {
		return n
	}
	return "unknown"
}

// DefaultCardCommands is the allow-list of a role whose policy names no
// card_commands: what a terminal does with a card it authenticated —
// information, reading and writing data, value and record files, and
// committing or aborting the transaction. It holds no command that changes
// a key, key settings, file settings or the card's configuration, and none
// that creates, deletes or formats: those are personalisation's, and only
// where its policy lists them.
func DefaultCardCommands() CardCommands {
	var s CardCommands
	for _, c := range []byte{
		0x60, 0xAF, 0x51, 0x45, 0x64, 0x6A, 0x6D, 0x6E, 0x6F, 0x61, 0xF5, 0xF6, 0xF7, 0x3C,
		0xBD, 0xAD, 0x3D, 0x8D, 0x6C, 0x0C, 0xDC, 0x1C, 0xBB, 0xAB, 0x3B, 0x8B, 0xDB, 0xBA,
		0xC7, 0xA7, 0xC8,
	} {
		s.add(c)
	}
	return s
}

// isoCommandNames names the ISO/IEC 7816-4 interindustry instructions
// (ISO/IEC 7816-4:2020 Table 4) a card application of Håndbok 206-2 §5 or
// APTA UTFS Part II §4.2 answers.
var isoCommandNames = map[byte]string{
	0xA4: "SELECT", 0xB0: "READ BINARY", 0xB1: "READ BINARY", 0xB2: "READ RECORD", 0xB3: "READ RECORD",
	0xCA: "GET DATA", 0xCB: "GET DATA", 0xD6: "UPDATE BINARY", 0xD7: "UPDATE BINARY",
	0xDC: "UPDATE RECORD", 0xDD: "UPDATE RECORD", 0xE2: "APPEND RECORD", 0xA2: "SEARCH RECORD",
	0x0E: "ERASE BINARY", 0x0F: "ERASE BINARY", 0x0C: "ERASE RECORD", 0xD0: "WRITE BINARY", 0xD1: "WRITE BINARY",
	0xD2: "WRITE RECORD", 0xDA: "PUT DATA", 0xDB: "PUT DATA", 0xE0: "CREATE FILE", 0xE4: "DELETE FILE",
	0x44: "ACTIVATE FILE", 0x04: "DEACTIVATE FILE", 0xE6: "TERMINATE DF", 0xE8: "TERMINATE EF", 0xFE: "TERMINATE CARD USAGE",
	0x20: "VERIFY", 0x21: "VERIFY", 0x24: "CHANGE REFERENCE DATA", 0x2C: "RESET RETRY COUNTER",
	0x22: "MANAGE SECURITY ENVIRONMENT", 0x2A: "PERFORM SECURITY OPERATION", 0x70: "MANAGE CHANNEL",
	0x82: "EXTERNAL AUTHENTICATE", 0x84: "GET CHALLENGE", 0x86: "GENERAL AUTHENTICATE", 0x87: "GENERAL AUTHENTICATE",
	0x88: "INTERNAL AUTHENTICATE", 0xC0: "GET RESPONSE", 0xC2: "ENVELOPE", 0xC3: "ENVELOPE",
}

// DefaultISOCommands is the ISO/IEC 7816-4 allow-list of a role whose
// policy names no iso_commands: selecting files and reading and writing
// their data (SELECT, READ BINARY, READ RECORD, GET DATA, UPDATE BINARY,
// UPDATE RECORD, APPEND RECORD). It holds nothing that changes a key or
// reference data (CHANGE REFERENCE DATA, RESET RETRY COUNTER, PUT DATA),
// creates, deletes, activates or terminates files, erases, or runs an
// authentication or a security operation.
func DefaultISOCommands() CardCommands {
	var s CardCommands
	for _, c := range []byte{0xA4, 0xB0, 0xB1, 0xB2, 0xB3, 0xCA, 0xCB, 0xD6, 0xD7, 0xDC, 0xDD, 0xE2} {
		s.add(c)
	}
	return s
}

// ISOCommand applies the grant's ISO/IEC 7816-4 allow-list (the role's
// iso_commands, or DefaultISOCommands) to a command's INS. It returns nil,
// or a *Denial by rule card-command. ISO/IEC 7816-4 secure messaging
// authenticates the header, INS included (DO'8E' covers CLA INS P1 P2), so
// what samd protects for one instruction cannot serve as another.
func (g Grant) ISOCommand(ins byte) error {
	if !g.ISOCommands.Has(ins) {
		name := isoCommandNames[ins]
		if name == "" {
			name = "unknown"
		}
		return deny("card-command", "ISO/IEC 7816-4 instruction %02X (%s) is not in the iso_commands of %s in policy %s", ins, name, g.Rule, g.PolicyVersion)
	}
	return nil
}

// PlainKeyWrites refuses a card session whose card, once authenticated,
// takes plain writes to its key: MIFARE Ultralight C (MF0ICU2 §7.5.6,
// its key in pages 2C to 2F, its configuration in 2A and 2B, written with
// WRITE in plain after authentication, never through samd). Authenticating
// one is handing the caller the card's key, so samd does it only for a role
// that may change keys (ChangeKey, C4, on its card_commands). It returns
// nil or a *Denial by rule card-command.
func (g Grant) PlainKeyWrites(card string) error {
	if !g.CardCommands.Has(CmdChangeKey) {
		return deny("card-command", "an authenticated %s takes plain writes to its key and configuration pages (2A to 2F): %s in policy %s may not change keys (C4 is not in its card_commands)", card, g.Rule, g.PolicyVersion)
	}
	return nil
}

// parseCommands reads a card_commands or iso_commands list: absent, the
// default; a list of hex codes, those; anything else is an error.
func parseCommands(n yaml.Node, def CardCommands, p []string, bad func([]string, string, ...any)) CardCommands {
	var s CardCommands
	switch n.Kind {
	case 0:
		return def
	case yaml.SequenceNode:
		for i, c := range n.Content {
			cmd, ok := parseCardCommand(c.Value)
			if c.Kind != yaml.ScalarNode || !ok {
				bad(append(p, "["+strconv.Itoa(i)+"]"), "want a command code as two hex digits, such as AD or \"3D\"")
				continue
			}
			s.add(cmd)
		}
	default:
		bad(p, "want a list of command codes, such as [BD, 3D]")
	}
	return s
}

// parseCardCommand reads one card_commands entry: two hex digits, with or
// without 0x ("AD", "0xAD", 3D).
func parseCardCommand(s string) (byte, bool) {
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(h) != 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(h, 16, 8)
	return byte(v), err == nil
}

// CardCommand applies the grant's card command allow-list (the role's
// card_commands, or DefaultCardCommands) to a command samd is asked to
// protect. It returns nil, or a *Denial by rule card-command.
//
// bound says whether the session's secure messaging binds the command code
// to what samd returns. DESFire EV2/EV3 and NTAG 424 DNA do (the MAC is
// computed under the session MAC key over Cmd ‖ CmdCtr ‖ TI ‖ header ‖
// data), so a code on the list is enough. DESFire EV1 and D40 encipher the
// data with a CRC the card checks (EV1: CRC32 over Cmd ‖ header ‖ data;
// D40: CRC16 over the data alone): anyone can compute a CRC, and free
// header bytes force any CRC value, so an enciphered payload samd makes for
// a WriteData can be sent as a ChangeKey. An unbound command is therefore
// protected only for a role whose list holds ChangeKey (C4), one that may
// change keys anyway.
func (g Grant) CardCommand(cmd byte, bound bool) error {
	if !g.CardCommands.Has(cmd) {
		return deny("card-command", "card command %02X (%s) is not in the card_commands of %s in policy %s", cmd, CardCommandName(cmd), g.Rule, g.PolicyVersion)
	}
	if !bound && !g.CardCommands.Has(CmdChangeKey) {
		return deny("card-command", "card command %02X (%s) would be enciphered with only a CRC to bind it, which makes it usable as a ChangeKey; %s in policy %s may not send ChangeKey (C4)", cmd, CardCommandName(cmd), g.Rule, g.PolicyVersion)
	}
	return nil
}
