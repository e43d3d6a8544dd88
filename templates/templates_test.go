package templates

import (
	"bytes"
	htmltemplate "html/template"
	"strings"
	"testing"
	"text/template"
)

// Every template the code reads must exist and, for run sheets, parse.
func TestTemplates(t *testing.T) {
	for _, name := range []string{"policy.json", "runsheet-bootstrap.md", "runsheet.html"} {
		b, err := Read(name)
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		if bytes.HasSuffix([]byte(name), []byte(".md")) {
			if _, err := template.New(name).Parse(string(b)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if strings.HasSuffix(name, ".html") {
			if _, err := htmltemplate.New(name).Parse(string(b)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if _, err := Read("no-such-template"); err == nil {
		t.Error("a missing template was found")
	}
}
