package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends r's canonical encoding — byte for byte what
// encoding/json's Marshal makes of it (fields in schema order, omitempty
// as tagged, HTML-safe escapes, time in RFC 3339 with nanoseconds) — to
// b, without reflection: every request writes a record, and encoding it
// with encoding/json was most of the record's cost. ok is false when a
// string is not valid UTF-8 or the time has no RFC 3339 form: canonical
// then takes encoding/json's road, which repairs both. TestAppendRecord
// holds it to encoding/json on every field and escape.
func appendRecord(b []byte, r *Record) (_ []byte, ok bool) {
	ok = true
	str := func(s string) {
		var good bool
		b, good = appendString(b, s)
		ok = ok && good
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":`...)
	if y := r.Time.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	str(r.RequestID)
	if c := r.Caller; c != nil {
		b = append(b, `,"caller":{"role":`...)
		str(c.Role)
		b = append(b, `,"operator":`...)
		str(c.Operator)
		b = append(b, `,"device":`...)
		str(c.Device)
		if c.Serial != "" {
			b = append(b, `,"cert_serial":`...)
			str(c.Serial)
		}
		b = append(b, '}')
	}
	b = append(b, `,"method":`...)
	str(r.Method)
	if r.Policy != "" {
		b = append(b, `,"policy":`...)
		str(r.Policy)
	}
	if len(r.Keys) > 0 {
		b = append(b, `,"keys":[`...)
		for i, k := range r.Keys {
			if i > 0 {
				b = append(b, ',')
			}
			str(k)
		}
		b = append(b, ']')
	}
	if len(r.Inputs) > 0 {
		b = append(b, `,"inputs":[`...)
		for i := range r.Inputs {
			if i > 0 {
				b = append(b, ',')
			}
			var good bool
			b, good = appendInput(b, &r.Inputs[i])
			ok = ok && good
		}
		b = append(b, ']')
	}
	b = append(b, `,"outcome":`...)
	str(string(r.Outcome))
	if r.Code != "" {
		b = append(b, `,"code":`...)
		str(r.Code)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		str(r.Reason)
	}
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, r.DurationUS, 10)
	if r.CardCommand != "" {
		b = append(b, `,"card_command":`...)
		str(r.CardCommand)
	}
	if r.FailedChecks != 0 {
		b = append(b, `,"failed_checks":`...)
		b = strconv.AppendInt(b, int64(r.FailedChecks), 10)
	}
	if len(r.Steps) > 0 {
		b = append(b, `,"steps":[`...)
		for i := range r.Steps {
			if i > 0 {
				b = append(b, ',')
			}
			s := &r.Steps[i]
			b = append(b, `{"n":`...)
			b = strconv.AppendInt(b, int64(s.N), 10)
			b = append(b, `,"step":`...)
			str(s.Step)
			if s.CardCommand != "" {
				b = append(b, `,"card_command":`...)
				str(s.CardCommand)
			}
			if s.Input != nil {
				b = append(b, `,"input":`...)
				var good bool
				b, good = appendInput(b, s.Input)
				ok = ok && good
			}
			b = append(b, `,"outcome":`...)
			str(string(s.Outcome))
			if s.Code != "" {
				b = append(b, `,"code":`...)
				str(s.Code)
			}
			if s.Reason != "" {
				b = append(b, `,"reason":`...)
				str(s.Reason)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if r.Via != "" {
		b = append(b, `,"via":`...)
		str(r.Via)
	}
	if c := r.Checkpoint; c != nil {
		b = append(b, `,"checkpoint":{"key":`...)
		str(c.Key)
		b = append(b, `,"covers":`...)
		b = strconv.AppendUint(b, c.Covers, 10)
		b = append(b, `,"digest":`...)
		str(c.Digest)
		b = append(b, `,"signature":`...)
		str(c.Signature)
		if c.Final {
			b = append(b, `,"final":true`...)
		}
		b = append(b, '}')
	}
	b = append(b, `,"prev":`...)
	str(r.Prev)
	b = append(b, `,"hash":`...)
	str(r.Hash)
	return append(b, '}'), ok
}

func appendInput(b []byte, in *Input) ([]byte, bool) {
	b = append(b, `{"name":`...)
	b, ok1 := appendString(b, in.Name)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(in.Size), 10)
	b = append(b, `,"sha256":`...)
	b, ok2 := appendString(b, in.SHA256)
	return append(b, '}'), ok1 && ok2
}

// appendString appends s as encoding/json quotes it with HTML escaping:
// `"` and `\` escaped, \b \f \n \r \t short, other control characters,
// <, > and & as \u00XX, U+2028 and U+2029 as \u2028 and \u2029. ok is
// false for invalid UTF-8, which encoding/json would replace.
func appendString(b []byte, s string) (_ []byte, ok bool) {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return b, false
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}
