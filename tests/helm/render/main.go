// render: renders a Helm chart as `helm template` does, for this project's
// chart test (Debian 12 ships no helm). Same engine ingredients as Helm 3:
// Go text/template, the sprig function library, Helm's include, tpl,
// required, toYaml and fromYaml, values decoded through JSON (numbers are
// float64, as in Helm). Then it checks every manifest: valid YAML, with
// apiVersion, kind and metadata.name, and no "<no value>".
//
//	render CHART_DIR [-f values.yaml]... [--notes]
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

func fatal(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "render: "+format+"\n", a...)
	os.Exit(1)
}

// loadYAML reads a file and decodes it the way Helm does (YAML -> JSON).
func loadYAML(path string) map[string]interface{} {
	data, err := os.ReadFile(path)
	if err != nil {
		fatal("%v", err)
	}
	var v interface{}
	if err := yaml.Unmarshal(data, &v); err != nil {
		fatal("%s: %v", path, err)
	}
	j, err := json.Marshal(jsonable(v))
	if err != nil {
		fatal("%s: %v", path, err)
	}
	out := map[string]interface{}{}
	if err := json.Unmarshal(j, &out); err != nil {
		fatal("%s: %v", path, err)
	}
	return out
}

// jsonable turns yaml.v3's map[string]interface{} trees into JSON-safe ones.
func jsonable(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, x := range t {
			t[k] = jsonable(x)
		}
		return t
	case []interface{}:
		for i, x := range t {
			t[i] = jsonable(x)
		}
		return t
	}
	return v
}

// merge overlays src onto dst (maps merge, everything else replaces).
func merge(dst, src map[string]interface{}) {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func toYAML(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func main() {
	if len(os.Args) < 2 {
		fatal("usage: render CHART_DIR [-f values.yaml]... [--notes]")
	}
	chartDir := os.Args[1]
	values := loadYAML(filepath.Join(chartDir, "values.yaml"))
	notes := false
	for i := 2; i < len(os.Args); i++ {
		switch os.Args[i] {
		case "-f":
			i++
			merge(values, loadYAML(os.Args[i]))
		case "--notes":
			notes = true
		default:
			fatal("unknown argument %q", os.Args[i])
		}
	}
	chart := loadYAML(filepath.Join(chartDir, "Chart.yaml"))
	capital := map[string]interface{}{}
	for k, v := range chart {
		capital[strings.ToUpper(k[:1])+k[1:]] = v
	}
	top := map[string]interface{}{
		"Values":  values,
		"Chart":   capital,
		"Release": map[string]interface{}{"Name": "rel", "Namespace": "ims", "Service": "Helm", "IsInstall": true, "Revision": 1},
	}

	root := template.New("chart").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		_ = yaml.Unmarshal([]byte(s), &m)
		return m
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	}
	// As under `helm template`: there is no cluster to look anything up in.
	funcs["lookup"] = func(apiVersion, kind, namespace, name string) map[string]interface{} {
		return map[string]interface{}{}
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return buf.String(), err
	}
	root.Funcs(funcs)

	files, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fatal("%v", err)
		}
		name := "templates/" + filepath.Base(f)
		if _, err := root.New(name).Parse(string(data)); err != nil {
			fatal("%s: %v", name, err)
		}
	}

	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasPrefix(base, "_") || (base == "NOTES.txt") != notes {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, "templates/"+base, top); err != nil {
			fatal("%s: %v", base, err)
		}
		out := buf.String()
		if strings.Contains(out, "<no value>") {
			fatal("%s: renders <no value> (a value is missing)", base)
		}
		if notes {
			fmt.Print(out)
			continue
		}
		for _, doc := range strings.Split(out, "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var m map[string]interface{}
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				fatal("%s: not YAML: %v\n%s", base, err, doc)
			}
			if m == nil {
				continue
			}
			meta, _ := m["metadata"].(map[string]interface{})
			if m["apiVersion"] == nil || m["kind"] == nil || meta == nil || meta["name"] == nil {
				fatal("%s: a manifest without apiVersion, kind or metadata.name:\n%s", base, doc)
			}
			fmt.Printf("---\n# Source: %s\n%s\n", base, strings.TrimLeft(doc, "\n"))
		}
	}
}
