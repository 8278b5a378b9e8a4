// Package bench holds the performance benchmarks of the product, run by
// `make bench` against a real Samba AD DC started on 127.0.0.1 in a private
// network namespace. They print figures; they never assert timings.
package bench
