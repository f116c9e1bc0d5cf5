package main

import (
	"fmt"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/pki/part19"
)

// withFiles sets the transaction-file part of the scheme CA's
// configuration from pki's (validated by config): the senders' places in
// Part 19 file names, the extra hardware types, the legacy senders, the
// body lengths, the creation skew and the serial mode.
func withFiles(c ca.Config, pc *config.PKI) (ca.Config, error) {
	c.Senders = map[string]ca.Sender{}
	for op, s := range pc.Senders {
		pto, err := part19.ParsePTOID(s.PTOID)
		if err != nil {
			return c, fmt.Errorf("pki.senders.%s: %w", op, err)
		}
		snd := ca.Sender{PTOID: pto, DISVersion: part19.DISVersion(s.DISVersion[0])}
		for _, h := range s.HardwareTypes {
			snd.HardwareTypes = append(snd.HardwareTypes, part19.HardwareType(h))
		}
		c.Senders[op] = snd
	}
	for _, h := range pc.HardwareTypes {
		c.HardwareTypes = append(c.HardwareTypes, part19.HardwareType(h))
	}
	for _, id := range pc.LegacySenders {
		pto, err := part19.ParsePTOID(id)
		if err != nil {
			return c, fmt.Errorf("pki.legacy_senders: %w", err)
		}
		c.LegacySenders = append(c.LegacySenders, pto)
	}
	c.BodyLengths = pc.BodyLengths
	c.CreationSkew = time.Duration(pc.CreationSkew) // 0: the CA's default
	c.SequentialSerials = pc.Serials == "sequential"
	return c, nil
}
