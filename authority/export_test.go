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
