package part19_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"runtime"
	"testing"

	"github.com/samd-io/samd/pki/part19"
)

// bigFile produces an XDR file of n messages of 256 bytes (a 16-byte
// message header and a 240-byte transaction of type 30) from one device,
// numbered from 1, without holding it: a header, then each message from a
// template with its number patched in.
type bigFile struct {
	n    int64
	pos  int64
	head [16]byte
	tmpl [256]byte
}

const bigMessage = 256

func newBigFile(n int64) *bigFile {
	f := &bigFile{n: n}
	be := binary.BigEndian
	be.PutUint32(f.head[0:], 1)
	be.PutUint32(f.head[4:], created)
	be.PutUint32(f.head[8:], 1)
	be.PutUint32(f.head[12:], uint32(16+n*bigMessage))
	be.PutUint32(f.tmpl[4:], created-60)
	copy(f.tmpl[8:], "BIG")
	be.PutUint32(f.tmpl[16:], 1)  // main header (made up)
	be.PutUint32(f.tmpl[20:], 30) // transaction type
	for i := 24; i < bigMessage; i++ {
		f.tmpl[i] = byte(i)
	}
	return f
}

func (f *bigFile) size() int64 { return 16 + f.n*bigMessage }

func (f *bigFile) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 && f.pos < f.size() {
		var k int
		if f.pos < 16 {
			k = copy(p, f.head[f.pos:])
		} else {
			i, off := (f.pos-16)/bigMessage, (f.pos-16)%bigMessage
			binary.BigEndian.PutUint32(f.tmpl[0:], uint32(i+1))
			k = copy(p, f.tmpl[off:])
		}
		p, f.pos, total = p[k:], f.pos+int64(k), total+k
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// allocated runs fn and returns the bytes it allocated on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLargeFileFlatMemory: a 200 MB file signs and verifies (walking all
// its 800 000 messages) in flat memory: measured as the bytes allocated
// while doing it, which must stay under 1 MiB — less than 0.005 bytes
// per byte of the file (a buffer of the file would be 200 MB).
func TestLargeFileFlatMemory(t *testing.T) {
	const messages = 200_000_000 / bigMessage
	name := mustName(t, "TR00041A.000000001")
	k := keyOf(t, "p256")
	bodies := &part19.BodyLengths{TypeOffset: 4, Lengths: map[uint32]uint32{30: 240}}
	var endFile []byte
	var err error
	signing := allocated(func() {
		var p *part19.Prepared
		if p, err = part19.Prepare(newBigFile(messages), name, k.cert, part19.SignOptions{Now: now}); err == nil {
			endFile, err = p.Sign(rand.Reader, k.key, part19.Trace{Instance: "samd-test", Counter: 1})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var res part19.Result
	verifying := allocated(func() {
		res, err = part19.Verify(io.MultiReader(newBigFile(messages), bytes.NewReader(endFile)), name, part19.VerifyOptions{Bodies: bodies})
	})
	size := newBigFile(messages).size() + int64(len(endFile))
	t.Logf("%d bytes: signing allocated %d bytes (%.6f per byte), verifying %d (%.6f per byte)",
		size, signing, float64(signing)/float64(size), verifying, float64(verifying)/float64(size))
	switch {
	case err != nil:
		t.Fatal(err)
	case !res.OK || res.Size != size || res.Messages.Messages != messages || len(res.Messages.Devices) != 1 || res.Messages.Devices[0].Missing != nil:
		t.Fatalf("%v %q %s; %d bytes; %+v", res.OK, res.Reason, res.Detail, res.Size, res.Messages)
	case signing > 1<<20 || verifying > 1<<20:
		t.Fatalf("memory grows with the file: signing allocated %d bytes, verifying %d", signing, verifying)
	}
}
