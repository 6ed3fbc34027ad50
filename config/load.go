// Package config loads keyturn's YAML configuration: strictly (an unknown
// key is an error naming its line and column), with $VAR and ${VAR}
// expansion in values (not in single-quoted values or | and > blocks),
// durations that count days ("90d"), defaults, and a
// validation pass that reports every problem at once, each with the field,
// the bad value and what to write instead.
//
// Secrets never sit in the config. Fields that lead to one are references:
// a file (token_file, password_file, signing_key_file), a backend path, or
// the SHA-256 of a broker key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a config.
type Problem struct {
	Line, Column int
	Field        string // dotted path such as apps[0].policy.max_age
	Msg          string
	Hint         string
}

func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Line > 0 && p.Column > 0:
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Column)
	case p.Line > 0:
		fmt.Fprintf(&b, "%d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString("; " + p.Hint)
	}
	return b.String()
}

// Error lists every problem found in one config file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.File + ":" + p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, expands, decodes, fills in and validates the config at path.
// Any problem comes back as an *Error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: read %q: %w", path, err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is Load on data already read; lookup resolves $VAR references.
func Parse(name string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, &Error{File: name, Problems: []Problem{yamlProblem(err)}}
	}
	w := &walker{lookup: lookup, pos: map[string]*yaml.Node{}}
	if len(root.Content) > 0 {
		w.walk(root.Content[0], reflect.TypeOf(Config{}), "")
	}
	if len(w.problems) > 0 {
		return nil, &Error{File: name, Problems: w.problems}
	}

	cfg := &Config{File: name}
	if len(root.Content) > 0 {
		if err := root.Content[0].Decode(cfg); err != nil {
			return nil, &Error{File: name, Problems: typeProblems(err)}
		}
	}
	applyDefaults(cfg)
	if ps := validate(cfg); len(ps) > 0 {
		for i := range ps {
			w.place(&ps[i])
		}
		return nil, &Error{File: name, Problems: ps}
	}
	return cfg, nil
}

// walker checks keys against the Go types, expands variables in values,
// and remembers where each field stands for later problems.
type walker struct {
	lookup   func(string) (string, bool)
	pos      map[string]*yaml.Node
	problems []Problem
}

func (w *walker) add(n *yaml.Node, field, msg, hint string) {
	w.problems = append(w.problems, Problem{n.Line, n.Column, field, msg, hint})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	w.pos[path] = n
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.ScalarNode:
		w.expand(n, path)
		if t == durationType {
			w.checkDuration(n, path)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		w.walkStruct(n, t, path)
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case n.Kind == yaml.AliasNode:
		w.add(n, path, "YAML aliases are not supported", "write the value out")
	}
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	fields := yamlFields(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := join(path, k.Value)
		if seen[k.Value] {
			w.add(k, sub, "set twice", "keep one")
		}
		seen[k.Value] = true
		ft, ok := fields[k.Value]
		if !ok {
			w.add(k, sub, "unknown key", hintFor(k.Value, fields))
			continue
		}
		w.walk(v, ft, sub)
	}
}

func (w *walker) expand(n *yaml.Node, path string) {
	// Single-quoted values and block scalars (| and >, where scripts
	// live) are taken literally.
	literal := yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
	if !strings.Contains(n.Value, "$") || n.Style&literal != 0 {
		return
	}
	var missing []string
	n.Value = os.Expand(n.Value, func(name string) string {
		if name == "$" {
			return "$"
		}
		v, ok := w.lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	for _, m := range missing {
		w.add(n, path, fmt.Sprintf("environment variable %s is not set", m),
			"set it, write $$ for a literal $, or single-quote the value (or use a | block)")
	}
}

var durationType = reflect.TypeOf(Duration(0))

// checkDuration reports a bad duration with its field, which the decoder
// alone cannot name.
func (w *walker) checkDuration(n *yaml.Node, path string) {
	if _, err := ParseDuration(n.Value); err != nil {
		w.add(n, path, err.Error(), "use a number with s, m, h, d or w, such as 90d")
	}
}

// place sets a problem's line and column from the field it names, or
// from the nearest parent that was written.
func (w *walker) place(p *Problem) {
	for f := p.Field; ; {
		if n, ok := w.pos[f]; ok {
			p.Line, p.Column = n.Line, n.Column
			return
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			return
		}
		f = f[:i]
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = f.Type
		}
	}
	return m
}

func hintFor(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for name := range fields {
		if d := distance(key, name); d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sortStrings(names)
	return "known keys here: " + strings.Join(names, ", ")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	return Problem{Line: line, Msg: msg, Hint: "fix the YAML syntax"}
}

func typeProblems(err error) []Problem {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Problem{yamlProblem(err)}
	}
	ps := make([]Problem, 0, len(te.Errors))
	for _, e := range te.Errors {
		ps = append(ps, yamlProblem(errors.New(e)))
	}
	return ps
}
