//go:build !race

package reliability

// raceBuild is set when the tests run with -race.
const raceBuild = false
