//go:build race

package reliability

// raceBuild is set when the tests run with -race: keyturn is then built
// with the race detector too, and every report it prints fails the run.
const raceBuild = true
