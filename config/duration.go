package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that also reads days and weeks ("90d",
// "2w", "1d12h"), since credential ages are counted in days.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String prints d in the largest whole unit that fits, such as "90d".
func (d Duration) String() string {
	td := time.Duration(d)
	const day = 24 * time.Hour
	switch {
	case td == 0:
		return "0s"
	case td%(7*day) == 0:
		return fmt.Sprintf("%dw", td/(7*day))
	case td%day == 0:
		return fmt.Sprintf("%dd", td/day)
	}
	return td.String()
}

// ParseDuration reads Go durations plus "d" (24h) and "w" (7d) units.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := strings.IndexAny(rest, "dw")
		if i < 0 {
			break
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n < 0 {
			// Not a leading day/week count: let time.ParseDuration judge.
			break
		}
		unit := 24 * time.Hour
		if rest[i] == 'w' {
			unit *= 7
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		total += d
	}
	if total < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return Duration(total), nil
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a string such as 90d or 10m", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v; use a number with s, m, h, d or w, such as 90d",
			n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes d as String does.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
