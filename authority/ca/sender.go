package ca

import (
	"slices"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki/part19"
)

// Sender is an operator's place in Håndbok 206 Part 19 transaction file
// names XXYYYYZU.NNNNNNNNN (§3.1): the PTOID its files name (YYYY), the
// hardware types it sends as (XX) and its DIS version (U). The operator
// is the one in the signer's certificate, so a file naming a PTOID must
// be signed by that operator's signer.
type Sender struct {
	PTOID         part19.PTOID
	HardwareTypes []part19.HardwareType
	DISVersion    part19.DISVersion
}

// parseName reads a file name as §3.1 defines it, with the hardware types
// configured besides TR, MW and IO, for a file of format f (an XML file's
// Z is 1). The error names the field at fault.
func (s *Service) parseName(name string, f part19.Format) (part19.Name, error) {
	n, err := part19.ParseName(name, s.cfg.HardwareTypes)
	if err == nil {
		err = n.CheckFormat(f)
	}
	if err != nil {
		return part19.Name{}, errkind.Wrap(errkind.InvalidInput, err, "files")
	}
	return n, nil
}

// sendsAs checks that the caller's operator may send files under the
// name: its PTOID, one of its hardware types and its DIS version.
func (s *Service) sendsAs(caller identity.Principal, n part19.Name) error {
	snd, ok := s.cfg.Senders[caller.Operator]
	switch {
	case !ok:
		return errkind.Errorf(errkind.Denied, "files: operator %s is no sender (pki.senders)", caller.Operator)
	case snd.PTOID != n.PTOID:
		return errkind.Errorf(errkind.Denied, "files: PTOID %s in the file name is not operator %s's (%s)", n.PTOID, caller.Operator, snd.PTOID)
	case !slices.Contains(snd.HardwareTypes, n.HardwareType):
		return errkind.Errorf(errkind.Denied, "files: operator %s does not send as hardware type %s (it sends as %v)", caller.Operator, n.HardwareType, snd.HardwareTypes)
	case snd.DISVersion != n.DISVersion:
		return errkind.Errorf(errkind.Denied, "files: DIS version %s in the file name is not operator %s's (%s)", n.DISVersion, caller.Operator, snd.DISVersion)
	}
	return nil
}

// sentBy reports why a file name does not belong to operator's files
// ("" if it does): the PTOID is the operator's and the hardware type one
// it sends as. The DIS version is not checked: it is the interface's
// version, and files of an earlier version stay the sender's.
func (s *Service) sentBy(operator string, n part19.Name) string {
	snd, ok := s.cfg.Senders[operator]
	switch {
	case !ok:
		return "operator " + operator + " is no sender (pki.senders)"
	case snd.PTOID != n.PTOID:
		return "the file name's PTOID " + n.PTOID.String() + " is not operator " + operator + "'s (" + snd.PTOID.String() + ")"
	case !slices.Contains(snd.HardwareTypes, n.HardwareType):
		return "operator " + operator + " does not send as hardware type " + string(n.HardwareType)
	}
	return ""
}

// legacy reports whether the PTOID is a legacy sender's, whose RSA/MD5
// and RSA/SHA-1 signatures verify.
func (s *Service) legacy(p part19.PTOID) bool { return slices.Contains(s.cfg.LegacySenders, p) }
