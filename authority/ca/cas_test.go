package ca_test

import (
	"bytes"
	"testing"
)

// TestChain: a CA's chain is its certificate and those above it, up to
// the root, as the CAs were created; an unknown CA has none.
func TestChain(t *testing.T) {
	e := newPKIEnv(t, "chain", 0)
	issuing, err := e.pki.CACertificate("chain-issuing")
	if err != nil {
		t.Fatal(err)
	}
	got := e.pki.Chain("chain-issuing")
	if len(got) != 2 || !bytes.Equal(got[0], issuing) || !bytes.Equal(got[1], e.root) {
		t.Fatalf("chain of the issuing CA: %d certificates", len(got))
	}
	if got := e.pki.Chain("chain-root"); len(got) != 1 || !bytes.Equal(got[0], e.root) {
		t.Fatalf("chain of the root: %d certificates", len(got))
	}
	if got := e.pki.Chain("no-such-ca"); len(got) != 0 {
		t.Fatalf("chain of an unknown CA: %d certificates", len(got))
	}
}
