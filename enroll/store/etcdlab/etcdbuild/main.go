// Command etcdbuild builds the etcd server binary of the tests once into its
// cache outside the repository (etcdlab.Binary) and prints its path. `make
// test` runs it before the test binaries, which run in a network namespace
// where the Go module proxy is unreachable.
package main

import (
	"fmt"
	"os"

	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

func main() {
	path, err := etcdlab.Binary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(path)
}
