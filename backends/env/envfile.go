package env

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Keys keyturn owns in the env file.
const (
	KeyClientID     = "SMARTCAR_CLIENT_ID"
	KeyClientSecret = "SMARTCAR_CLIENT_SECRET"
)

// envFile is a parsed env file. Lines keyturn does not own are kept as
// they were, so consumers may keep other settings in the same file.
type envFile struct {
	lines []string
	vals  map[string]string
	index map[string]int
}

// parseEnv reads KEY=VALUE lines, with optional "export ", single quotes
// (literal) and double quotes (backslash escapes). It reports the first
// line it cannot read by number, never by content.
func parseEnv(data []byte) (*envFile, error) {
	f := &envFile{vals: map[string]string{}, index: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		f.lines = append(f.lines, line)
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		t = strings.TrimPrefix(t, "export ")
		key, raw, ok := strings.Cut(t, "=")
		key = strings.TrimSpace(key)
		if !ok || !validKey(key) {
			return nil, fmt.Errorf("line %d is not KEY=VALUE", n)
		}
		v, err := unquote(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("line %d (%s): %v", n, key, err)
		}
		f.vals[key] = v
		f.index[key] = len(f.lines) - 1
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

func validKey(k string) bool {
	for i, c := range k {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return k != ""
}

func unquote(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	switch raw[0] {
	case '\'':
		if len(raw) < 2 || raw[len(raw)-1] != '\'' {
			return "", fmt.Errorf("unterminated single quote")
		}
		return raw[1 : len(raw)-1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(raw); i++ {
			c := raw[i]
			switch {
			case c == '"' && i == len(raw)-1:
				return b.String(), nil
			case c == '"':
				return "", fmt.Errorf("text after closing quote")
			case c == '\\' && i+1 < len(raw):
				i++
				b.WriteByte(raw[i])
			default:
				b.WriteByte(c)
			}
		}
		return "", fmt.Errorf("unterminated double quote")
	}
	return raw, nil
}

// quote writes v so that parseEnv, a POSIX shell and systemd's
// EnvironmentFile all read it back unchanged.
func quote(v string) string {
	plain := v != ""
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.ContainsRune("_-.:/@+,=%", c)) {
			plain = false
			break
		}
	}
	if plain {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`")
	return `"` + r.Replace(v) + `"`
}

// set replaces or appends key.
func (f *envFile) set(key, value string) {
	line := key + "=" + quote(value)
	if i, ok := f.index[key]; ok {
		f.lines[i] = line
	} else {
		f.index[key] = len(f.lines)
		f.lines = append(f.lines, line)
	}
	f.vals[key] = value
}

func (f *envFile) bytes() []byte {
	return []byte(strings.Join(f.lines, "\n") + "\n")
}

// writeAtomic replaces path with data: a temporary file in the same
// folder, fsynced, renamed over path, and the folder fsynced, so a crash
// leaves either the old file or the new one, never a mix.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
