package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// obj is one decoded Kubernetes object.
type obj = map[string]any

// decodeAll decodes every document of a multi-document YAML stream.
func decodeAll(data []byte) ([]obj, error) {
	var out []obj
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var o obj
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if o != nil {
			out = append(out, o)
		}
	}
}

func decodeFile(t *testing.T, path string) []obj {
	t.Helper()
	objs, err := decodeAll([]byte(readFile(t, path)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return objs
}

// kustomizeKeys are the kustomization fields render understands; any
// other field fails the test rather than being ignored.
var kustomizeKeys = []string{"apiVersion", "kind", "namespace", "resources",
	"configMapGenerator", "patches", "images"}

// render is the little of kustomize that keyturn's manifests use:
// resources, configMapGenerator (create and replace, without the name's
// hash suffix), strategic merge patches (maps merge, lists of named items
// merge by name, other lists are replaced), namespace and images. Where
// kubectl is installed, the tests check its rendering too.
func render(t *testing.T, dir string) []obj {
	t.Helper()
	k := decodeFile(t, filepath.Join(dir, "kustomization.yaml"))[0]
	for key := range k {
		if !slices.Contains(kustomizeKeys, key) {
			t.Fatalf("%s/kustomization.yaml: render does not know %q; teach it", dir, key)
		}
	}
	var objs []obj
	for _, r := range list(k, "resources") {
		p := filepath.Join(dir, r.(string))
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			objs = append(objs, render(t, p)...)
		} else {
			objs = append(objs, decodeFile(t, p)...)
		}
	}
	for _, g := range list(k, "configMapGenerator") {
		objs = generateConfigMap(t, dir, g.(obj), objs)
	}
	for _, p := range list(k, "patches") {
		patch := decodeFile(t, filepath.Join(dir, str(p, "path")))[0]
		target := find(objs, str(patch, "kind"), str(patch, "metadata", "name"))
		if target == nil {
			t.Fatalf("%s: patch %s finds no %s %s", dir, str(p, "path"), str(patch, "kind"),
				str(patch, "metadata", "name"))
		}
		merge(target, patch)
	}
	if ns := str(k, "namespace"); ns != "" {
		for _, o := range objs {
			if o["kind"] != "Namespace" {
				md(o)["namespace"] = ns
			}
		}
	}
	for _, im := range list(k, "images") {
		setImage(objs, str(im, "name"), str(im, "newName")+":"+str(im, "newTag"))
	}
	return objs
}

func generateConfigMap(t *testing.T, dir string, g obj, objs []obj) []obj {
	t.Helper()
	data := obj{}
	for _, f := range list(g, "files") {
		data[filepath.Base(f.(string))] = readFile(t, filepath.Join(dir, f.(string)))
	}
	name := str(g, "name")
	switch str(g, "behavior") {
	case "", "create":
		labels := m(g, "options", "labels")
		return append(objs, obj{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": obj{"name": name, "labels": labels}, "data": data})
	case "replace":
		cm := find(objs, "ConfigMap", name)
		if cm == nil {
			t.Fatalf("%s: configMapGenerator replaces %s, which the base lacks", dir, name)
		}
		cm["data"] = data
		return objs
	default:
		t.Fatalf("%s: render does not know behavior %q", dir, str(g, "behavior"))
		return nil
	}
}

func setImage(objs []obj, name, image string) {
	for _, o := range objs {
		for _, c := range list(o, "spec", "template", "spec", "containers") {
			if c := c.(obj); c["image"] == name {
				c["image"] = image
			}
		}
	}
}

// merge applies a strategic merge patch the way kustomize does for the
// fields keyturn's patches touch.
func merge(dst, src obj) {
	for k, sv := range src {
		switch s := sv.(type) {
		case obj:
			if d, ok := dst[k].(obj); ok {
				merge(d, s)
				continue
			}
		case []any:
			if d, ok := dst[k].([]any); ok && named(s) && named(d) {
				dst[k] = mergeNamed(d, s)
				continue
			}
		}
		dst[k] = sv
	}
}

func named(l []any) bool {
	for _, v := range l {
		if o, ok := v.(obj); !ok || o["name"] == nil {
			return false
		}
	}
	return len(l) > 0
}

func mergeNamed(dst, src []any) []any {
	for _, sv := range src {
		s := sv.(obj)
		i := slices.IndexFunc(dst, func(d any) bool { return d.(obj)["name"] == s["name"] })
		if i < 0 {
			dst = append(dst, s)
			continue
		}
		merge(dst[i].(obj), s)
	}
	return dst
}

func find(objs []obj, kind, name string) obj {
	for _, o := range objs {
		if o["kind"] == kind && str(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

func all(objs []obj, kind string) []obj {
	var out []obj
	for _, o := range objs {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}

// get walks a path of map keys; it returns nil where the path ends early.
func get(v any, path ...string) any {
	for _, p := range path {
		o, ok := v.(obj)
		if !ok {
			return nil
		}
		v = o[p]
	}
	return v
}

func m(v any, path ...string) obj {
	o, _ := get(v, path...).(obj)
	return o
}

func md(o obj) obj {
	if m(o, "metadata") == nil {
		o["metadata"] = obj{}
	}
	return m(o, "metadata")
}

func list(v any, path ...string) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func str(v any, path ...string) string {
	switch x := get(v, path...).(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// byName finds the item of a list of named objects.
func byName(l []any, name string) obj {
	for _, v := range l {
		if o, ok := v.(obj); ok && o["name"] == name {
			return o
		}
	}
	return nil
}

func strs(l []any) []string {
	var out []string
	for _, v := range l {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

func dump(o obj) string {
	b, _ := yaml.Marshal(o)
	return strings.TrimSpace(string(b))
}
