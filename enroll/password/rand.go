package password

import (
	"crypto/rand"
	"fmt"
	"io"
)

// pwRandSource hands out uniform integers from crypto/rand (or r) through a
// small buffer.
type pwRandSource struct {
	r   io.Reader
	buf [128]byte
	pos int
}

func (s *pwRandSource) byte() (byte, error) {
	if s.pos == len(s.buf) {
		var err error
		if s.r == nil {
			_, err = rand.Read(s.buf[:]) // never fails since Go 1.24
		} else {
			_, err = io.ReadFull(s.r, s.buf[:])
		}
		if err != nil {
			return 0, fmt.Errorf("password: reading random bytes: %w", err)
		}
		s.pos = 0
	}
	b := s.buf[s.pos]
	s.pos++
	return b, nil
}

// intn returns a uniform integer in [0, n), 0 < n <= 1<<31, by rejection:
// values at or above the largest multiple of n are drawn again.
func (s *pwRandSource) intn(n int) (int, error) {
	if n <= 0 || n > 1<<31 {
		panic("password: intn out of range")
	}
	if n <= 256 {
		limit := 256 - 256%n
		for {
			b, err := s.byte()
			if err != nil {
				return 0, err
			}
			if int(b) < limit {
				return int(b) % n, nil
			}
		}
	}
	limit := uint64(1<<32) - uint64(1<<32)%uint64(n)
	for {
		var v uint64
		for range 4 {
			b, err := s.byte()
			if err != nil {
				return 0, err
			}
			v = v<<8 | uint64(b)
		}
		if v < limit {
			return int(v % uint64(n)), nil
		}
	}
}
