package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends r's canonical encoding to b, without reflection:
// every request writes a record, and encoding it with encoding/json was
// most of the record's cost. The encoding is samd's, defined here and
// nowhere else: fields in schema order, omitempty as tagged, strings as
// appendString writes them, time in RFC 3339 with nanoseconds — for valid
// text byte for byte what encoding/json's Marshal makes of a [Record]
// (TestAppendRecord holds it to that on every field and escape), and for
// invalid UTF-8 one fixed spelling whichever Go built samd (Go 1.26's
// encoding/json escaped the replacement character, Go 1.27's writes it
// raw). ok is false only when the time has no RFC 3339 form.
func appendRecord(b []byte, r *Record) (_ []byte, ok bool) {
	str := func(s string) { b = appendString(b, s) }
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":`...)
	if y := r.Time.Year(); y < 0 || y > 9999 {
		return b, false // encoding/json refuses it too
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
			b = appendInput(b, &r.Inputs[i])
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
				b = appendInput(b, s.Input)
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
	return append(b, '}'), true
}

func appendInput(b []byte, in *Input) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, in.Name)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(in.Size), 10)
	b = append(b, `,"sha256":`...)
	b = appendString(b, in.SHA256)
	return append(b, '}')
}

// appendString appends s as encoding/json quotes it with HTML escaping:
// `"` and `\` escaped, \b \f \n \r \t short, other control characters,
// <, > and & as \u00XX, U+2028 and U+2029 as \u2028 and \u2029, and
// every byte that is not part of valid UTF-8 replaced by U+FFFD, written
// raw (utf8.RuneError), one per byte.
func appendString(b []byte, s string) []byte {
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
			b = append(b, s[start:i]...)
			b = utf8.AppendRune(b, utf8.RuneError)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
