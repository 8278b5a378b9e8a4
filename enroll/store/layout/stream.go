package layout

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Format names this stream's version in its header.
const Format = "replyreset-layout-1"

// legacyEtcdFormat is the etcd backup of before this package: the same
// records without TTLs or counts. Read still reads it.
const legacyEtcdFormat = "replyreset-etcd-1"

// Header is a stream's first line.
type Header struct {
	Format string `json:"format"`
	// Source names what was read: "bolt:<path>" or "etcd:<prefix>".
	Source string `json:"source,omitempty"`
	// Revision is the etcd revision the records were read at (0 for bbolt).
	Revision int64     `json:"revision,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	// Counts is the number of records of each kind that follow: Read
	// checks it, so a truncated stream is refused.
	Counts Counts `json:"counts,omitempty"`
}

// Record is one key (relative to a store's prefix) and its value.
type Record struct {
	Key   string `json:"k"`
	Value []byte `json:"v"`
	// Expires is when a TTL record ends by itself (Unix ns; Expiry), 0
	// for a record without a TTL.
	Expires int64 `json:"exp,omitempty"`
}

// TTL reports whether r lives on a TTL, and for how long from now (0 or
// less: it has ended).
func (r Record) TTL(now time.Time) (time.Duration, bool) {
	if r.Expires == 0 {
		return 0, false
	}
	return time.Duration(r.Expires - UnixNano(now)), true
}

// NewRecord is the record of key and v, with its Expiry.
func NewRecord(key string, v []byte) Record {
	r := Record{Key: key, Value: v}
	if ns, ok := Expiry(key, v); ok {
		r.Expires = ns
		if ns == 0 {
			r.Expires = -1 // 0 says "no TTL"
		}
	}
	return r
}

// Counts is a number of records per kind.
type Counts map[string]int

// Add counts one record of key's kind.
func (c Counts) Add(key string) { c[Kind(key)]++ }

// Total is the sum over the kinds.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// String lists the kinds in order, "activations 2, audit 40, ...".
func (c Counts) String() string {
	if len(c) == 0 {
		return "no records"
	}
	parts := make([]string, 0, len(c))
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	return strings.Join(parts, ", ")
}

// Equal reports whether c and d count the same (a kind of 0 is absent).
func (c Counts) Equal(d Counts) bool {
	for k, v := range c {
		if d[k] != v {
			return false
		}
	}
	for k, v := range d {
		if c[k] != v {
			return false
		}
	}
	return true
}

// Writer writes a stream: the header, then Write's records.
type Writer struct {
	enc *json.Encoder
	cw  countWriter
}

// NewWriter writes h (its Format set) to w and returns the Writer of
// the records.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	sw := &Writer{cw: countWriter{w: w}}
	sw.enc = json.NewEncoder(&sw.cw)
	h.Format = Format
	if err := sw.enc.Encode(h); err != nil {
		return nil, fmt.Errorf("write the stream's header: %w", err)
	}
	return sw, nil
}

// Write writes one record.
func (w *Writer) Write(r Record) error { return w.enc.Encode(r) }

// Bytes is the number of bytes written so far.
func (w *Writer) Bytes() int64 { return w.cw.n }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// maxLine bounds one line: etcd's values stay under its 1.5 MiB request
// limit, and base64 makes 4 bytes of 3.
const maxLine = 4 << 20

// ErrStream is wrapped by every error of Read about the stream itself
// (not a stream, damaged, truncated).
var ErrStream = errors.New("not a usable record stream")

// Read reads a stream, giving each record in turn to fn (nil: only
// read), and returns its header and the records read of each kind. It
// is the one reader of the stream: a line that does not decode, a header
// of another format, or counts other than the header's (a truncated
// stream) are errors wrapping ErrStream; fn's error is returned as is.
func Read(r io.Reader, fn func(Record) error) (Header, Counts, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var h Header
	read := Counts{}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return h, read, fmt.Errorf("%w: %w", ErrStream, err)
		}
		return h, read, fmt.Errorf("%w: it is empty", ErrStream)
	}
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil || (h.Format != Format && h.Format != legacyEtcdFormat) {
		return h, read, fmt.Errorf("%w: the first line is not a %s header (format %q)", ErrStream, Format, h.Format)
	}
	n := 0
	for sc.Scan() {
		n++
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Key == "" {
			return h, read, fmt.Errorf("%w: record %d is damaged", ErrStream, n)
		}
		read.Add(rec.Key)
		if fn != nil {
			if err := fn(rec); err != nil {
				return h, read, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return h, read, fmt.Errorf("%w: after record %d: %w", ErrStream, n, err)
	}
	if h.Counts != nil && !h.Counts.Equal(read) {
		return h, read, fmt.Errorf("%w: it is truncated or altered: the header counts %s, the stream holds %s",
			ErrStream, h.Counts, read)
	}
	return h, read, nil
}
