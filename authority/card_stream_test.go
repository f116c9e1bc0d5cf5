package authority_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
)

// TestCardStreamEndWipes: a card session held in a stream lives in the
// store of open streams until End, which zeroes every buffer of its keys
// (the card key between the two authentication steps, the randoms, the
// session keys) and removes it; a step after End is refused. An EV2
// session in a stream costs the HSM one CMAC: the card key diversified
// for the answer serves the card's proof too.
func TestCardStreamEndWipes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	master, _ := keys.NewRef("an10922/test/example-aes128", 1)
	g := f.decide(t, terminal1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{master}})
	card := &cardsim.EV2{Keys: [][]byte{unhex(an10922Key)}, Rand: rand.Reader,
		Files: map[byte]*cardsim.File{1: {Data: []byte("samd-mac-mode-file-0123456789..."), Mode: 1}}}
	begin := func(s *authority.CardStream) []byte {
		t.Helper()
		_, ch := card.Transceive(0x71, []byte{0, 0})
		ans, err := s.BeginAuth(ctx, g, authority.BeginAuthRequest{Protocol: authority.ProtocolEV2, Key: authority.CardKey{Master: master, Input: nxpAbu(t)}, Challenge: ch})
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	held := func(bufs [][]byte) int {
		n := 0
		for _, b := range bufs {
			if len(b) > 0 && !bytes.Equal(b, make([]byte, len(b))) {
				n++
			}
		}
		return n
	}
	zeroed := func(t *testing.T, what string, bufs [][]byte) {
		t.Helper()
		for i, b := range bufs {
			if !bytes.Equal(b, make([]byte, len(b))) {
				t.Fatalf("%s: buffer %d not wiped: %d bytes", what, i, len(b))
			}
		}
	}
	before := f.a.CardStreams()

	// Ended between the authentication's two steps: the card key and the
	// randoms.
	s1 := f.a.OpenCardStream(terminal1)
	begin(s1)
	mid := s1.Secrets()
	if held(mid) < 3 {
		t.Fatalf("after begin the session holds %d secrets; want the card key, RndA and RndB", held(mid))
	}

	// Ended after the authentication and a protected command: the session
	// keys.
	s2 := f.a.OpenCardStream(terminal1)
	cmacs := f.keys.cmacs.Load()
	st, resp := card.Transceive(0xAF, begin(s2))
	if st != cardsim.StatusOK {
		t.Fatalf("the card refused samd's answer: %02X", st)
	}
	if _, err := s2.FinishAuth(ctx, resp); err != nil {
		t.Fatal(err)
	}
	if n := f.keys.cmacs.Load() - cmacs; n != 1 {
		t.Fatalf("an authentication in a stream made %d CMACs in the HSM, want 1", n)
	}
	out, err := s2.ProtectCommand(g, 0xAD, []byte{1, 0, 0, 0, 16, 0, 0}, nil, authority.CommMAC)
	if err != nil {
		t.Fatal(err)
	}
	st, resp = card.Transceive(0xAD, out)
	if got, err := s2.CheckResponse(st, resp, authority.CommMAC, 0); err != nil || string(got) != "samd-mac-mode-fi" {
		t.Fatalf("ReadData in the stream: %q %v", got, err)
	}
	open := s2.Secrets()
	if held(open) < 2 {
		t.Fatalf("the open session holds %d secrets; want the session keys", held(open))
	}
	if n := f.a.CardStreams() - before; n != 2 {
		t.Fatalf("%d streams in the store, want 2", n)
	}

	s1.End()
	zeroed(t, "ended mid-authentication", mid)
	s2.End()
	zeroed(t, "ended open", open)
	s2.End()
	if n := f.a.CardStreams() - before; n != 0 {
		t.Fatalf("%d streams left in the store after End", n)
	}
	if s2.Secrets() != nil {
		t.Fatal("an ended stream still holds its session")
	}
	if _, err := s2.ProtectCommand(g, 0xAD, []byte{1, 0, 0, 0, 16, 0, 0}, nil, authority.CommMAC); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("a step after End: %v", err)
	}
}
