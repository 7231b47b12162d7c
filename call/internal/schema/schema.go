// Package schema compiles and checks the JSON Schemas (2020-12) of operations' inputs,
// outputs and error details: santhosh-tekuri/jsonschema for the full rules and their error
// messages, a raw-bytes fast path for the common subset that can only accept, and a one-pass
// tree builder instead of encoding/json (ADR 0010).
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// englishPrinter renders validation messages; created once.
var englishPrinter = sync.OnceValue(func() *message.Printer { return message.NewPrinter(language.English) })

// Schema validates instances; a nil *Schema accepts everything.
type Schema struct {
	s    *jsonschema.Schema
	fast *fastSchema // nil when the schema is outside the fast subset
}

// refuseLoader makes every external $ref fail: only in-document references resolve.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema references are not loaded: %s", url)
}

const schemaURL = "mem:///schema.json"

// Compile compiles a JSON Schema 2020-12 document. Absent, null, {} and true accept all (nil).
// External $refs are refused; only in-document references resolve.
func Compile(raw json.RawMessage) (*Schema, error) {
	trimmed := bytes.TrimSpace(raw)
	switch string(trimmed) {
	case "", "null", "{}", "true":
		return nil, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(trimmed))
	if err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, err
	}
	return &Schema{s: s, fast: compileFast(doc, 0)}, nil
}

// Validate checks raw against the schema; the error's text is the first failure, as
// "at '<instance location>': <message>".
func (c *Schema) Validate(raw json.RawMessage) error {
	if c == nil || (c.fast != nil && c.fast.accepts(raw)) {
		return nil
	}
	v, err := decodeTree(raw)
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	err = c.s.Validate(v)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return errors.New(firstFailure(ve))
	}
	return err
}

// firstFailure renders the first leaf failure as "<instance location>: <message>".
func firstFailure(ve *jsonschema.ValidationError) string {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	loc := "/" + strings.Join(ve.InstanceLocation, "/")
	return fmt.Sprintf("at '%s': %s", loc, ve.ErrorKind.LocalizedString(englishPrinter()))
}
