package tlsconf

import (
	"crypto/rand"
)

// keptTicketKeys is how many session ticket keys are accepted: the current
// one, which also encrypts new tickets, and the previous ones, so that a
// ticket issued just before a rotation still resumes.
const keptTicketKeys = 3

// ticketKeys are the session ticket keys of a listener. Go rotates
// keys by itself too, but keeps each for a week; rotating every 12 hours
// bounds what a stolen key decrypts (forward secrecy of resumed sessions).
type ticketKeys struct {
	keys [][32]byte
}

// rotate makes a new current key, keeping the previous ones.
func (t *ticketKeys) rotate() {
	var k [32]byte
	rand.Read(k[:])
	t.keys = append([][32]byte{k}, t.keys...)
	if len(t.keys) > keptTicketKeys {
		t.keys = t.keys[:keptTicketKeys]
	}
}
