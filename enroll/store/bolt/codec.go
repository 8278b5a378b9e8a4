package bolt

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/layout"
)

// Fixed-width big-endian encodings. Unsigned keys sort bytewise in numeric
// order, which is the order bbolt cursors iterate in.

func u64Bytes(v uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v)
}

func bytesU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// unixNano is t in Unix nanoseconds, clamped (layout.UnixNano).
var unixNano = layout.UnixNano

func appendNano(b []byte, ns int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(ns))
}

func appendTime(b []byte, t time.Time) []byte { return appendNano(b, unixNano(t)) }

func timeBytes(t time.Time) []byte { return appendTime(make([]byte, 0, 8), t) }

// bytesNano decodes 8 bytes written by appendTime.
func bytesNano(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

// getRecord decodes the JSON record stored under key k (a big-endian ID)
// of b, named what in errors, or returns ErrNotFound.
func getRecord[T any](b *bbolt.Bucket, k []byte, what string) (T, error) {
	var v T
	raw := b.Get(k)
	if raw == nil {
		return v, enroll.ErrNotFound
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decode %s %d: %w", what, bytesU64(k), err)
	}
	return v, nil
}
