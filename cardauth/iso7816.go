package cardauth

import "crypto/cipher"

// ISO7816Cryptogram computes the answer to a card challenge for a generic
// ISO/IEC 7816-4 EXTERNAL AUTHENTICATE (after GET CHALLENGE), or the
// expected card answer to INTERNAL AUTHENTICATE: the challenge encrypted
// in CBC mode with a zero IV under the card key. The challenge must be a
// whole number of cipher blocks (8 bytes for 3DES, 16 for AES), as the
// card platforms of Håndbok 206's recommendation use.
//
// Deprecated: a caller-chosen challenge encrypted under a card key, with no
// session around it, is an encryption oracle: whoever may call it obtains
// E(K, x) for any x of its choosing. Use [ISOBegin] and [ISOAuth.Finish],
// which encrypt only samd's own RND.IFD and K.IFD with the card's
// challenge, once per session.
func ISO7816Cryptogram(b cipher.Block, challenge []byte) ([]byte, error) {
	bs := b.BlockSize()
	if len(challenge) == 0 || len(challenge)%bs != 0 || len(challenge) > 256 {
		return nil, invalid("the challenge must be a multiple of %d bytes, at most 256", bs)
	}
	return cbcEncrypt(b, make([]byte, bs), challenge), nil
}

// ISO7816Verify checks a card's answer to INTERNAL AUTHENTICATE with the
// terminal's challenge, in constant time.
//
// Deprecated: the challenge is the caller's, not samd's, so a success
// proves nothing to samd. Use [ISOBegin] and [ISOAuth.Finish].
func ISO7816Verify(b cipher.Block, challenge, response []byte) error {
	want, err := ISO7816Cryptogram(b, challenge)
	if err != nil {
		return err
	}
	if !equal(want, response) {
		return ErrCryptogram
	}
	return nil
}
