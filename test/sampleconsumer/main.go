// Command sampleconsumer runs the sample consumer of package
// consumers/sample on its own: a tiny app that reads a Smartcar secret
// from an env file and reports on /healthz whether it still works. See
// that package for its flags.
package main

import (
	"os"

	"github.com/keyturn/keyturn/consumers/sample"
)

func main() { os.Exit(sample.Main(os.Args[1:])) }
