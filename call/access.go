package call

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/alkdev/alknet/core"
)

// OwnershipProvider answers resource-ownership questions (§9.3).
type OwnershipProvider interface {
	Owns(ctx context.Context, id *core.Identity, resourceType, resourceID, action string) (bool, error)
	OwnsAny(ctx context.Context, id *core.Identity, resourceType string) (bool, error)
	OwnedResources(ctx context.Context, id *core.Identity, resourceType string) ([]string, error)
}

// checkAccess evaluates §9.2 in order; the first failure wins. input is used only to find the
// resource id through ResourceIDPath.
func checkAccess(ctx context.Context, spec *OperationSpec, id *core.Identity, own OwnershipProvider, input json.RawMessage, log func(msg string, args ...any)) *Error {
	ac := spec.AccessControl
	if ac.IsEmpty() {
		return nil
	}
	forbid := func(msg string) *Error { return &Error{code: CodeForbidden, message: msg} }
	if id == nil {
		return forbid(msgAuthRequired)
	}
	for _, s := range ac.RequiredScopes {
		if !id.HasScope(s) {
			return forbid("missing required scope: " + s)
		}
	}
	if ac.RequiredScopesAny != nil && !slices.ContainsFunc(ac.RequiredScopesAny, id.HasScope) {
		return forbid("missing required scope (any of: " + strings.Join(ac.RequiredScopesAny, ", ") + ")")
	}
	if own != nil && ac.ResourceType != "" {
		if rid, ok := resourceID(spec.ResourceIDPath, input); ok {
			yes, err := own.Owns(ctx, id, ac.ResourceType, rid, ac.ResourceAction)
			if err != nil {
				log("ownership check failed", "op", spec.Name, "err", err)
				return errInternal(msgOwnershipFailed, err)
			}
			if !yes {
				return forbid("not owner of resource: " + ac.ResourceType + "/" + rid)
			}
			return nil
		}
		yes, err := own.OwnsAny(ctx, id, ac.ResourceType)
		if err != nil {
			log("ownership check failed", "op", spec.Name, "err", err)
			return errInternal(msgOwnershipFailed, err)
		}
		if !yes {
			return forbid("no owned resources of type: " + ac.ResourceType)
		}
		return nil
	}
	switch {
	case ac.ResourceType != "" && ac.ResourceAction != "":
		if !slices.Contains(id.Resources[ac.ResourceType], ac.ResourceAction) {
			return forbid("missing resource: " + ac.ResourceType + "/" + ac.ResourceAction)
		}
	case ac.ResourceType != "":
		if len(id.Resources[ac.ResourceType]) == 0 {
			return forbid("missing resource: " + ac.ResourceType)
		}
	case ac.ResourceAction != "":
		found := false
		for _, actions := range id.Resources {
			if slices.Contains(actions, ac.ResourceAction) {
				found = true
				break
			}
		}
		if !found {
			return forbid("missing resource action: " + ac.ResourceAction)
		}
	}
	return nil
}

// resourceID reads the resource id at path ("$/a/b" is an RFC 6901 pointer after "$";
// "$.a.b" reads as "/a/b"). A bare "$", a missing or a non-string value yields none.
func resourceID(path string, input json.RawMessage) (string, bool) {
	if !strings.HasPrefix(path, "$") || len(path) < 2 {
		return "", false
	}
	ptr := path[1:]
	if ptr[0] == '.' {
		ptr = "/" + strings.ReplaceAll(ptr[1:], ".", "/")
	}
	if ptr[0] != '/' {
		return "", false
	}
	var v any
	if json.Unmarshal(input, &v) != nil {
		return "", false
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[tok]
			if !ok {
				return "", false
			}
			v = next
		case []any:
			i, ok := arrayIndex(tok, len(node))
			if !ok {
				return "", false
			}
			v = node[i]
		default:
			return "", false
		}
	}
	s, ok := v.(string)
	return s, ok
}

func arrayIndex(tok string, n int) (int, bool) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	i := 0
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int(c-'0')
		if i >= n {
			return 0, false
		}
	}
	return i, true
}
