// Package templates embeds the documents a ceremony prints or writes
// verbatim: run sheets, checklists and the default policy. Everything here
// is reviewed text, compiled into the binary so that an air-gapped machine
// needs no other file.
package templates

import (
	"embed"
	"fmt"
)

//go:embed files
var files embed.FS

// Read returns the named template (a file name under templates/files).
func Read(name string) ([]byte, error) {
	b, err := files.ReadFile("files/" + name)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", name, err)
	}
	return b, nil
}

// MustRead is Read for templates that are known to exist at build time;
// a missing one is a programming error caught by the tests.
func MustRead(name string) []byte {
	b, err := Read(name)
	if err != nil {
		panic(err)
	}
	return b
}
