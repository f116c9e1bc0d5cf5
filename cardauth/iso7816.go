package cardauth

import "crypto/cipher"

// ISO7816Cryptogram computes the answer to a card challenge for a generic
// ISO/IEC 7816-4 EXTERNAL AUTHENTICATE (after GET CHALLENGE), or the
// expected card answer to INTERNAL AUTHENTICATE: the challenge encrypted
// in CBC mode with a zero IV under the card key. The challenge must be a
// whole number of cipher blocks (8 bytes for 3DES, 16 for AES), as the
// card platforms of Håndbok 206's recommendation use.
func ISO7816Cryptogram(b cipher.Block, challenge []byte) ([]byte, error) {
	bs := b.BlockSize()
	if len(challenge) == 0 || len(challenge)%bs != 0 || len(challenge) > 256 {
		return nil, invalid("the challenge must be a multiple of %d bytes, at most 256", bs)
	}
	return cbcEncrypt(b, make([]byte, bs), challenge), nil
}

// ISO7816Verify checks a card's answer to INTERNAL AUTHENTICATE with the
// terminal's challenge, in constant time.
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
