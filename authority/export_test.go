package authority

import "io"

// SetISORandom makes samd draw RND.IFD and K.IFD from r until the returned
// function restores crypto/rand: for this package's tests only (an
// _test.go file is in no binary).
func SetISORandom(r io.Reader) (restore func()) {
	old := isoRand
	isoRand = r
	return func() { isoRand = old }
}

// Secrets returns the buffers of the stream's session that hold keys or
// an authentication's randoms (nil entries where it holds none), so that
// a test can see them wiped by End.
func (s *CardStream) Secrets() [][]byte {
	if s.cs == nil {
		return nil
	}
	return s.cs.secrets()
}
