// Package strictjson is the one strict JSON decoder for every input file
// keyceremony reads (outside the repository export's streaming parser).
//
// Decode walks the tokens of one JSON value against the Go type it is
// decoded into, with reflect, and promises that the value it accepts is
// exactly what the type describes. It refuses, with an *Error naming the
// file, the line and the field path (for example
// "bootstrap.json:7: root.keys[1].slot"):
//
//   - invalid UTF-8 and JSON syntax errors (ErrSyntax);
//   - a key that appears twice in one object, at any depth, in structs,
//     maps, free-form (any) values and json.Unmarshaler values alike
//     (ErrDuplicateKey);
//   - a key that is not the exact json tag name of a field, including a key
//     that differs from one only in case, which encoding/json would accept
//     (ErrUnknownField);
//   - a missing field: every field is required unless its tag says
//     omitempty (or omitzero), that is, unless json.Marshal may leave it
//     out (ErrMissingField);
//   - a value of the wrong JSON type, an integer that is not written as
//     one or is out of the Go type's range, an array of the wrong length
//     for a Go array (ErrType);
//   - null anywhere, except inside a value of type any, which holds
//     arbitrary JSON (ErrNull);
//   - anything but white space after the value (ErrTrailingData).
//
// Within one object, duplicate keys, keys in the wrong case and syntax
// errors are reported where they occur; otherwise missing fields are
// reported before unknown ones, so that a misspelt key is reported as the
// field it should have been.
//
// A type whose pointer implements json.Unmarshaler is a leaf: Decode
// checks its raw value for syntax, duplicate keys and null, then hands it
// to UnmarshalJSON, and reports that method's error, kept whole as the
// cause, at the value's path. Values of type any decode as encoding/json
// decodes them (map[string]any, []any, float64, string, bool, nil).
// Struct fields follow encoding/json's rules for names: the json tag's
// name, else the Go field name; "-" and unexported fields are skipped;
// embedded structs without a tag are flattened. The ",string" option and
// embedded pointers are not supported and are reported as ErrUnsupported.
//
// Whatever Decode accepts, encoding/json decodes to an equal value, and
// json.Marshal of it decodes again to an equal value (the fuzz target
// checks both).
package strictjson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Errors; every *Error wraps exactly one of them. Check with errors.Is.
var (
	ErrSyntax       = errors.New("malformed json")
	ErrDuplicateKey = errors.New("duplicate key")
	ErrUnknownField = errors.New("unknown field")
	ErrMissingField = errors.New("missing field")
	ErrType         = errors.New("wrong type")
	ErrNull         = errors.New("null where a value belongs")
	ErrTrailingData = errors.New("trailing data after the value")
	// ErrUnsupported is a Go type this decoder does not handle: a
	// programming error, not bad input.
	ErrUnsupported = errors.New("unsupported go type")
)

// Error is a refusal to decode. Path is the field path of the offending
// key or value ("root.keys[1].slot", "slots.9a"), empty for the whole
// value. Line is 1-based. Err wraps one of the package's sentinels, or is
// the error a json.Unmarshaler returned.
type Error struct {
	File string
	Line int
	Path string
	Err  error
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Path != "" {
		s += ": " + e.Path
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Decode decodes the one JSON value in data into v, which must be a
// non-nil pointer, as the package doc describes. file names the input in
// errors. On error, v may hold part of the value: callers discard it.
func Decode(data []byte, file string, v any) error {
	return decode(data, file, 0, v)
}

// DecodeLine decodes one line of a JSON Lines file: line is its 1-based
// line number, and every error names it.
func DecodeLine(data []byte, file string, line int, v any) error {
	return decode(data, file, line, v)
}

func decode(data []byte, file string, line int, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &Error{File: file, Line: max(line, 1), Err: fmt.Errorf("%w: decoding into %T, not a non-nil pointer", ErrUnsupported, v)}
	}
	d := &decoder{data: data, file: file, line: line}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return d.errAt(int64(i), "", fmt.Errorf("%w: not valid UTF-8", ErrSyntax))
	}
	d.dec = json.NewDecoder(bytes.NewReader(data))
	d.dec.UseNumber()
	if err := d.value("", rv.Elem()); err != nil {
		return err
	}
	if tok, err := d.dec.Token(); err != io.EOF {
		if err == nil {
			return d.errAt(d.dec.InputOffset(), "", fmt.Errorf("%w: %s", ErrTrailingData, typeName(tok)))
		}
		return d.errAt(d.dec.InputOffset(), "", ErrTrailingData)
	}
	return nil
}

type decoder struct {
	dec   *json.Decoder
	data  []byte
	base  int64 // offset of dec's input within data
	depth int   // nesting of objects and arrays
	file  string
	line  int // fixed line (JSON Lines), or 0 to count
}

func (d *decoder) lineAt(off int64) int {
	if d.line > 0 {
		return d.line
	}
	off = min(max(off+d.base, 0), int64(len(d.data)))
	return 1 + bytes.Count(d.data[:off], []byte("\n"))
}

func (d *decoder) errAt(off int64, path string, err error) error {
	return &Error{File: d.file, Line: d.lineAt(off), Path: path, Err: err}
}

// fail reports err at the token just read.
func (d *decoder) fail(path string, sentinel error, format string, args ...any) error {
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
	}
	return d.errAt(d.dec.InputOffset(), path, err)
}

// maxDepth bounds the nesting of objects and arrays, as encoding/json
// bounds it, so that no input can exhaust the stack.
const maxDepth = 10000

func (d *decoder) token(path string) (json.Token, error) {
	t, err := d.dec.Token()
	if err == nil {
		switch t {
		case json.Delim('{'), json.Delim('['):
			if d.depth++; d.depth > maxDepth {
				return nil, d.fail(path, ErrSyntax, "nested deeper than %d", maxDepth)
			}
		case json.Delim('}'), json.Delim(']'):
			d.depth--
		}
		return t, nil
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		// Truncation is about the whole input, not the field it cut.
		return nil, d.errAt(int64(len(d.data))-d.base, "", fmt.Errorf("%w: unexpected end of data", ErrSyntax))
	}
	// Token reports some syntax errors at offsets relative to the value it
	// was reading; the input offset is never before the error.
	off := d.dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = max(off, se.Offset)
	}
	return nil, d.errAt(off, path, fmt.Errorf("%w: %w", ErrSyntax, err))
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	anyType         = reflect.TypeFor[any]()
)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// value decodes the next value into v (settable).
func (d *decoder) value(path string, v reflect.Value) error {
	t := v.Type()
	if t.Kind() != reflect.Pointer && t != anyType && reflect.PointerTo(t).Implements(unmarshalerType) {
		return d.unmarshaler(path, v)
	}
	if t.Kind() == reflect.Pointer {
		// null is refused below whatever the pointer points to.
		p := reflect.New(t.Elem())
		if err := d.value(path, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	tok, err := d.token(path)
	if err != nil {
		return err
	}
	if t == anyType {
		x, err := d.free(path, tok)
		if err != nil {
			return err
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		} else {
			v.SetZero()
		}
		return nil
	}
	if tok == nil {
		return d.fail(path, ErrNull, "")
	}
	want := func(what string) error {
		return d.fail(path, ErrType, "want %s, got %s", what, typeName(tok))
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return want("an object")
		}
		return d.object(path, v)
	case reflect.Map:
		if tok != json.Delim('{') {
			return want("an object")
		}
		if t.Key().Kind() != reflect.String {
			return d.fail(path, ErrUnsupported, "map key type %s", t.Key())
		}
		return d.mapValue(path, v)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			s, ok := tok.(string)
			if !ok {
				return want("a base64 string")
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return d.fail(path, ErrType, "not standard base64")
			}
			v.SetBytes(b)
			return nil
		}
		if tok != json.Delim('[') {
			return want("an array")
		}
		s := reflect.MakeSlice(t, 0, 0)
		for i := 0; d.dec.More(); i++ {
			s = reflect.Append(s, reflect.Zero(t.Elem()))
			if err := d.value(index(path, i), s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		_, err := d.token(path) // ']'
		return err
	case reflect.Array:
		if tok != json.Delim('[') {
			return want("an array")
		}
		i := 0
		for ; d.dec.More(); i++ {
			if i >= t.Len() {
				return d.fail(path, ErrType, "more than %d elements", t.Len())
			}
			if err := d.value(index(path, i), v.Index(i)); err != nil {
				return err
			}
		}
		if _, err := d.token(path); err != nil {
			return err
		}
		if i != t.Len() {
			return d.fail(path, ErrType, "%d elements, want %d", i, t.Len())
		}
		return nil
	case reflect.String:
		s, ok := tok.(string)
		if !ok {
			return want("a string")
		}
		v.SetString(s)
		return nil
	case reflect.Bool:
		b, ok := tok.(bool)
		if !ok {
			return want("a boolean")
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return want("an integer")
		}
		i, err := strconv.ParseInt(string(n), 10, t.Bits())
		if err != nil {
			return d.integerError(path, n, err)
		}
		v.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := tok.(json.Number)
		if !ok {
			return want("a non-negative integer")
		}
		u, err := strconv.ParseUint(string(n), 10, t.Bits())
		if err != nil {
			return d.integerError(path, n, err)
		}
		v.SetUint(u)
		return nil
	case reflect.Float32, reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			return want("a number")
		}
		f, err := strconv.ParseFloat(string(n), t.Bits())
		if err != nil {
			return d.fail(path, ErrType, "%s is out of range", n)
		}
		v.SetFloat(f)
		return nil
	}
	return d.fail(path, ErrUnsupported, "%s", t)
}

func (d *decoder) integerError(path string, n json.Number, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return d.fail(path, ErrType, "%s is out of range", n)
	}
	return d.fail(path, ErrType, "want an integer, got %s", n)
}

// unmarshaler hands the raw next value to v's UnmarshalJSON, after checking
// it for syntax, duplicate keys and null.
func (d *decoder) unmarshaler(path string, v reflect.Value) error {
	start := d.dec.InputOffset()
	var raw json.RawMessage
	if err := d.dec.Decode(&raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return d.errAt(start+se.Offset, path, fmt.Errorf("%w: %w", ErrSyntax, err))
		}
		return d.errAt(int64(len(d.data))-d.base, "", fmt.Errorf("%w: unexpected end of data", ErrSyntax))
	}
	end := d.dec.InputOffset()
	if string(raw) == "null" {
		return d.errAt(end, path, ErrNull)
	}
	// Check the raw value on its own, with offsets into the whole input.
	sub := &decoder{dec: json.NewDecoder(bytes.NewReader(raw)), data: d.data, base: d.base + end - int64(len(raw)), depth: d.depth, file: d.file, line: d.line}
	sub.dec.UseNumber()
	tok, err := sub.token(path)
	if err != nil {
		return err
	}
	if _, err := sub.free(path, tok); err != nil {
		return err
	}
	if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
		return d.errAt(end, path, err)
	}
	return nil
}

// free decodes the value that starts with tok as encoding/json decodes
// into any, refusing duplicate keys.
func (d *decoder) free(path string, tok json.Token) (any, error) {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for d.dec.More() {
				k, err := d.key(path)
				if err != nil {
					return nil, err
				}
				if _, dup := m[k]; dup {
					return nil, d.fail(join(path, k), ErrDuplicateKey, "")
				}
				tok, err := d.token(join(path, k))
				if err != nil {
					return nil, err
				}
				x, err := d.free(join(path, k), tok)
				if err != nil {
					return nil, err
				}
				m[k] = x
			}
			_, err := d.token(path)
			return m, err
		case '[':
			a := []any{}
			for i := 0; d.dec.More(); i++ {
				tok, err := d.token(index(path, i))
				if err != nil {
					return nil, err
				}
				x, err := d.free(index(path, i), tok)
				if err != nil {
					return nil, err
				}
				a = append(a, x)
			}
			_, err := d.token(path)
			return a, err
		}
		return nil, d.fail(path, ErrSyntax, "unexpected %s", t)
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return nil, d.fail(path, ErrType, "%s is out of range", t)
		}
		return f, nil
	default:
		return t, nil
	}
}

// skip reads and discards the value that starts with tok, still refusing
// duplicate keys.
func (d *decoder) skip(path string) error {
	tok, err := d.token(path)
	if err != nil {
		return err
	}
	_, err = d.free(path, tok)
	return err
}

func (d *decoder) key(path string) (string, error) {
	tok, err := d.token(path)
	if err != nil {
		return "", err
	}
	k, ok := tok.(string)
	if !ok {
		return "", d.fail(path, ErrSyntax, "object key is %s", typeName(tok))
	}
	return k, nil
}

func (d *decoder) mapValue(path string, v reflect.Value) error {
	t := v.Type()
	m := reflect.MakeMap(t)
	seen := map[string]bool{}
	for d.dec.More() {
		k, err := d.key(path)
		if err != nil {
			return err
		}
		p := join(path, k)
		if seen[k] {
			return d.fail(p, ErrDuplicateKey, "")
		}
		seen[k] = true
		e := reflect.New(t.Elem()).Elem()
		if err := d.value(p, e); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
	}
	if _, err := d.token(path); err != nil {
		return err
	}
	v.Set(m)
	return nil
}

func (d *decoder) object(path string, v reflect.Value) error {
	fs, err := fieldsOf(v.Type())
	if err != nil {
		return d.fail(path, ErrUnsupported, "%w", err)
	}
	seen := map[string]bool{}
	var unknown error
	unknownKey := ""
	for d.dec.More() {
		k, err := d.key(path)
		if err != nil {
			return err
		}
		p := join(path, k)
		if seen[k] {
			return d.fail(p, ErrDuplicateKey, "")
		}
		seen[k] = true
		f, ok := fs.byName[k]
		if !ok {
			if alt, ok := fs.byFold[strings.ToLower(k)]; ok {
				return d.fail(p, ErrUnknownField, "the field is %q (names are case-sensitive)", alt.name)
			}
			if unknown == nil {
				unknownKey = k
				unknown = d.fail(p, ErrUnknownField, "")
			}
			if err := d.skip(p); err != nil {
				return err
			}
			continue
		}
		if err := d.value(p, fieldByIndex(v, f.index)); err != nil {
			return err
		}
	}
	if _, err := d.token(path); err != nil { // '}'
		return err
	}
	for _, f := range fs.list {
		if !f.optional && !seen[f.name] {
			if unknown != nil {
				return d.fail(join(path, f.name), ErrMissingField, "the object has an unknown field %q instead", unknownKey)
			}
			return d.fail(join(path, f.name), ErrMissingField, "")
		}
	}
	return unknown
}

func fieldByIndex(v reflect.Value, idx []int) reflect.Value {
	for _, i := range idx {
		v = v.Field(i)
	}
	return v
}

type field struct {
	name     string
	index    []int
	optional bool
}

type fields struct {
	list   []*field
	byName map[string]*field
	byFold map[string]*field
}

var fieldCache sync.Map // reflect.Type -> *fields

func fieldsOf(t reflect.Type) (*fields, error) {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*fields), nil
	}
	fs := &fields{byName: map[string]*field{}, byFold: map[string]*field{}}
	if err := collect(t, nil, fs); err != nil {
		return nil, err
	}
	fieldCache.Store(t, fs)
	return fs, nil
}

func collect(t reflect.Type, index []int, fs *fields) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && !hasTag {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				return fmt.Errorf("embedded pointer %s in %s", ft, t)
			}
			if ft.Kind() == reflect.Struct {
				if err := collect(ft, idx, fs); err != nil {
					return err
				}
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f := &field{name: name, index: idx}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "omitempty", "omitzero":
				f.optional = true
			case "string":
				return fmt.Errorf("the ,string option on %s.%s", t, sf.Name)
			}
		}
		if _, dup := fs.byName[name]; dup {
			return fmt.Errorf("two fields named %q in %s", name, t)
		}
		fs.list = append(fs.list, f)
		fs.byName[name] = f
		fs.byFold[strings.ToLower(name)] = f
	}
	return nil
}

func typeName(t json.Token) string {
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return strconv.Quote(string(t))
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", t)
}

// Line returns the 1-based line on which the value at path begins in the
// JSON document data (for errors found after decoding), or 0 if data holds
// no such path or does not parse. Paths are as in *Error.
func Line(data []byte, path string) int {
	d := &decoder{dec: json.NewDecoder(bytes.NewReader(data)), data: data}
	d.dec.UseNumber()
	n, found := d.find("", path)
	if !found {
		return 0
	}
	return n
}

func (d *decoder) find(path, want string) (int, bool) {
	tok, err := d.dec.Token()
	if err != nil {
		return 0, false
	}
	if path == want {
		return d.lineAt(d.dec.InputOffset()), true
	}
	switch tok {
	case json.Delim('{'):
		for d.dec.More() {
			kt, err := d.dec.Token()
			if err != nil {
				return 0, false
			}
			k, _ := kt.(string)
			if n, ok := d.find(join(path, k), want); ok {
				return n, true
			}
		}
		d.dec.Token()
	case json.Delim('['):
		for i := 0; d.dec.More(); i++ {
			if n, ok := d.find(index(path, i), want); ok {
				return n, true
			}
		}
		d.dec.Token()
	}
	return 0, false
}
