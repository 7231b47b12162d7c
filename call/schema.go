package call

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

// compiledSchema validates instances; nil accepts everything.
type compiledSchema struct {
	s    *jsonschema.Schema
	fast *fastSchema // nil when the schema is outside the fast subset
}

// refuseLoader makes every external $ref fail: only in-document references resolve.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema references are not loaded: %s", url)
}

const schemaURL = "mem:///schema.json"

// compileSchema compiles a JSON Schema 2020-12 document. Absent, null, {} and true accept all.
func compileSchema(raw json.RawMessage) (*compiledSchema, error) {
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
	return &compiledSchema{s: s, fast: compileFast(doc, 0)}, nil
}

// validate checks raw against the schema; the error's text is the first failure.
func (c *compiledSchema) validate(raw json.RawMessage) error {
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
