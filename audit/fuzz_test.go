package audit_test

import (
	"bytes"
	"testing"

	"github.com/samd-io/samd/audit"
)

func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2026-11-23T10:00:00Z","request_id":"r","method":"/m","outcome":"ok","duration_us":1,"prev":"","hash":"x"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := audit.Read(bytes.NewReader(b))
		if err == nil {
			_ = audit.Verify(recs)
		}
	})
}
