package ca

import (
	"context"
	"strings"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki/part19"
)

// SequenceName is the state store's sequence of a series of file names:
// "file/" and the names' first seven characters, XXYYYYZ (hardware type,
// PTOID, file type). The store counts 1 … MaxSeq+1 and wraps to 1
// (state.PKI.NextSequence); the name's NNNNNNNNN is the count modulo
// MaxSeq+1, so that 999999999 is followed by 000000000 (§3.1: "It is
// reset to 0 at its upper limit") and the first name of a series is
// 000000001.
func SequenceName(s part19.Series) string { return "file/" + s.String() }

// NextFileName hands out the next name XXYYYYZU.NNNNNNNNN of the caller's
// operator: its PTOID and DIS version (pki.senders), the hardware type
// given (or its only one, when "") and the file type Z. Each number is
// handed out once per turn of its series, durably, across replicas.
func (s *Service) NextFileName(ctx context.Context, caller identity.Principal, hardware part19.HardwareType, fileType part19.FileType) (part19.Name, error) {
	snd, ok := s.cfg.Senders[caller.Operator]
	if !ok {
		return part19.Name{}, errkind.Errorf(errkind.Denied, "files: operator %s is no sender (pki.senders)", caller.Operator)
	}
	if hardware == "" {
		if len(snd.HardwareTypes) != 1 {
			return part19.Name{}, errkind.Errorf(errkind.InvalidInput, "files: operator %s sends as %s: name the hardware type", caller.Operator, hardwareList(snd.HardwareTypes))
		}
		hardware = snd.HardwareTypes[0]
	}
	n := part19.Name{HardwareType: hardware, PTOID: snd.PTOID, FileType: fileType, DISVersion: snd.DISVersion}
	if err := n.Validate(s.cfg.HardwareTypes); err != nil {
		return part19.Name{}, errkind.Wrap(errkind.InvalidInput, err, "files")
	}
	if err := s.sendsAs(caller, n); err != nil {
		return part19.Name{}, err
	}
	count, err := s.cfg.State.NextSequence(ctx, SequenceName(n.Series()), part19.MaxSeq+1)
	if err != nil {
		return part19.Name{}, err
	}
	n.Seq = uint32(count % (part19.MaxSeq + 1))
	return n, nil
}

func hardwareList(hs []part19.HardwareType) string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = string(h)
	}
	return strings.Join(out, ", ")
}
