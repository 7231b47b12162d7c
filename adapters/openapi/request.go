package openapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alkdev/alknet/adapters/internal/redact"
	"github.com/alkdev/alknet/adapters/upstream"
	"github.com/alkdev/alknet/call"
)

const maxErrorBody = 4 << 10

// handler sends one call to the API (docs/http.md §5.7, §5.8).
func (im *Imported) handler(op importedOp, base *url.URL) call.Handler {
	return func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		var args map[string]json.RawMessage
		if err := json.Unmarshal(in, &args); err != nil {
			return nil, call.NewError(call.CodeInvalidInput, "input must be an object")
		}
		var secret []byte
		if op.credential != "" {
			v, ok := oc.Capabilities.Get(op.credential)
			if !ok {
				return nil, call.NewError(call.CodeInternal, "credential "+op.credential+" is not bound")
			}
			secret = v
		}
		red := redact.New(secret)
		defer red.Wipe()
		req, ce := im.buildRequest(ctx, op, base, args, secret)
		clear(secret)
		if ce != nil {
			return nil, ce
		}
		select {
		case im.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-im.sem }()
		rctx, cancel := context.WithTimeout(ctx, im.cfg.Timeout)
		defer cancel()
		resp, err := im.client.Do(req.WithContext(rctx))
		for k := range req.Header { // the credential's copy in the request
			req.Header[k] = nil
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(rctx.Err(), context.DeadlineExceeded):
				return nil, call.NewError(call.CodeTimeout, "upstream timed out").WithRetryable(true)
			}
			msg := "the API could not be reached"
			if upstream.Refused(err) {
				msg = "refused: " + red.String(errors.Unwrap(err).Error())
			}
			retry := op.method == http.MethodGet || op.method == http.MethodPut || op.method == http.MethodDelete
			return nil, call.NewError(codeTransport, msg).WithRetryable(retry)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, im.cfg.MaxResponseBytes+1))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(rctx.Err(), context.DeadlineExceeded) {
				return nil, call.NewError(call.CodeTimeout, "upstream timed out").WithRetryable(true)
			}
			return nil, call.NewError(codeTransport, "the answer was cut off").WithRetryable(false)
		}
		if int64(len(body)) > im.cfg.MaxResponseBytes {
			return nil, call.NewError(codeTooLarge, fmt.Sprintf("the API's answer is larger than %d bytes", im.cfg.MaxResponseBytes))
		}
		ct := resp.Header.Get("Content-Type")
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, statusError(resp.StatusCode, ct, body, red)
		}
		out, ce := decodeBody(ct, body)
		if ce != nil {
			return nil, ce
		}
		return red.Bytes(out), nil
	}
}

// buildRequest makes the HTTP request of one call; a bad value is INVALID_INPUT with nothing sent.
func (im *Imported) buildRequest(ctx context.Context, op importedOp, base *url.URL, args map[string]json.RawMessage, secret []byte) (*http.Request, *call.Error) {
	path := op.path
	query := url.Values{}
	header := http.Header{}
	for _, p := range op.params {
		raw, ok := args[p.name]
		if !ok || string(raw) == "null" {
			if p.in == "path" {
				return nil, call.NewError(call.CodeInvalidInput, fmt.Sprintf("path parameter %q is missing", p.name))
			}
			continue
		}
		switch p.in {
		case "path":
			v := scalar(raw)
			if v == "" || v == "." || v == ".." {
				return nil, call.NewError(call.CodeInvalidInput, fmt.Sprintf("path parameter %q: empty, . or .. is not allowed", p.name))
			}
			path = strings.ReplaceAll(path, "{"+p.name+"}", url.PathEscape(v))
		case "header":
			v := scalar(raw)
			if !p.primitive {
				v = string(raw)
			}
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, call.NewError(call.CodeInvalidInput, fmt.Sprintf("header parameter %q: CR, LF or NUL", p.name))
			}
			header.Set(p.name, v)
		case "query":
			addQuery(query, p, raw)
		}
	}
	if strings.Contains(path, "{") {
		return nil, call.NewError(call.CodeInvalidInput, "a path parameter is missing")
	}
	u := *base
	u.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + path // path is escaped already
	unescaped, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, call.NewError(call.CodeInvalidInput, "the request path could not be built")
	}
	u.Path = unescaped
	if op.authKind == "query" {
		query.Set(op.authName, string(secret))
	}
	u.RawQuery = query.Encode()
	var body io.Reader
	if b, ok := args["body"]; ok && op.hasBody {
		body = bytes.NewReader(b)
		header.Set("Content-Type", "application/json")
	}
	req, err := http.NewRequestWithContext(ctx, op.method, u.String(), body)
	if err != nil {
		return nil, call.NewError(call.CodeInvalidInput, "the request could not be built")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "alknet/"+im.cfg.Version)
	req.Header.Set("Accept", "application/json, text/*;q=0.9, */*;q=0.5")
	switch op.authKind {
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+string(secret))
	case "header":
		req.Header.Set(op.authName, string(secret))
	}
	return req, nil
}

// scalar is a JSON primitive as text (strings unquoted).
func scalar(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// addQuery adds one query parameter, form style (explode as declared) or deepObject.
func addQuery(q url.Values, p param, raw json.RawMessage) {
	var arr []json.RawMessage
	var obj map[string]json.RawMessage
	switch {
	case json.Unmarshal(raw, &arr) == nil:
		if p.explode {
			for _, v := range arr {
				q.Add(p.name, scalar(v))
			}
			return
		}
		parts := make([]string, len(arr))
		for i, v := range arr {
			parts[i] = scalar(v)
		}
		q.Set(p.name, strings.Join(parts, ","))
	case json.Unmarshal(raw, &obj) == nil:
		keys := sortedKeys(obj)
		if p.style == "deepObject" {
			for _, k := range keys {
				q.Set(p.name+"["+k+"]", scalar(obj[k]))
			}
			return
		}
		if p.explode {
			for _, k := range keys {
				q.Set(k, scalar(obj[k]))
			}
			return
		}
		var parts []string
		for _, k := range keys {
			parts = append(parts, k, scalar(obj[k]))
		}
		q.Set(p.name, strings.Join(parts, ","))
	default:
		q.Set(p.name, scalar(raw))
	}
}

// decodeBody is a 2xx answer as the operation's output (docs/http.md §5.8).
func decodeBody(ct string, body []byte) (json.RawMessage, *call.Error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return json.RawMessage("null"), nil
	}
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		if !utf8.Valid(body) || !json.Valid(body) {
			return nil, call.NewError(codeInvalidResp, "the API's answer is not one JSON value")
		}
		var buf bytes.Buffer
		if json.Compact(&buf, body) != nil {
			return nil, call.NewError(codeInvalidResp, "the API's answer is not one JSON value")
		}
		return buf.Bytes(), nil
	case strings.HasPrefix(mt, "text/"):
		if !utf8.Valid(body) {
			return nil, call.NewError(codeInvalidResp, "the API's text answer is not UTF-8")
		}
		s, _ := json.Marshal(string(body))
		return s, nil
	}
	s, _ := json.Marshal(base64.StdEncoding.EncodeToString(body))
	return s, nil
}

// statusError is a non-2xx answer as HTTP_<status> (docs/http.md §5.8), redacted.
func statusError(status int, ct string, body []byte, red *redact.Redactor) *call.Error {
	d := map[string]any{"status": status, "content_type": ct}
	mt, _, _ := mime.ParseMediaType(ct)
	if len(body) > 0 && len(body) <= maxErrorBody {
		switch {
		case (mt == "application/json" || strings.HasSuffix(mt, "+json")) && json.Valid(body):
			d["body"] = json.RawMessage(red.Bytes(body))
		case strings.HasPrefix(mt, "text/") && utf8.Valid(body):
			d["body"] = red.String(string(body))
		}
	}
	details, _ := json.Marshal(d)
	retry := status == 408 || status == 429 || status >= 502 && status <= 504
	return call.NewError("HTTP_"+strconv.Itoa(status), fmt.Sprintf("upstream returned %d", status)).
		WithDetails(details).WithRetryable(retry)
}
