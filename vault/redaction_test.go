package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Checklist 35, 36.
func TestRedaction(t *testing.T) {
	v := abandonVault(t)
	dk, _ := v.DeriveEd25519(PathIdentity)
	ek, _ := DeriveEd25519FromSeed(mustSeed(t), PathIdentity)
	secrets := [][]byte{dk.PrivateKey(), ek.ChainCode()}
	forms := func(x any) []string {
		var logs bytes.Buffer
		slog.New(slog.NewTextHandler(&logs, nil)).Info("k", "key", x)
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("k", "key", x)
		js, _ := json.Marshal(x)
		return []string{fmt.Sprintf("%v %+v %#v %s %q %x %X %d", x, x, x, x, x, x, x, x), logs.String(), string(js)}
	}
	type holder struct{ k DerivedKey }
	type pholder struct{ k *ExtendedKey }
	var all []string
	for _, x := range []any{*dk, dk, *ek, ek, holder{*dk}, pholder{ek}, struct{ E ExtendedKey }{*ek}} {
		all = append(all, forms(x)...)
	}
	all = append(all, dk.String(), dk.GoString(), ek.String(), ek.GoString())
	for _, s := range all {
		for _, sec := range secrets {
			for _, enc := range []string{hex.EncodeToString(sec), strings.ToUpper(hex.EncodeToString(sec)), base64.StdEncoding.EncodeToString(sec), fmt.Sprint(sec[:8])} {
				if strings.Contains(s, enc[:16]) {
					t.Fatalf("secret in %q", s)
				}
			}
		}
	}
	js, _ := json.Marshal(dk)
	want := `{"key_type":"Ed25519","path":"m/74'/0'/0'/0'","public_key":"` + hex.EncodeToString(dk.PublicKey()) + `","private_key":"[REDACTED]"}`
	if string(js) != want {
		t.Fatalf("MarshalJSON\n got %s\nwant %s", js, want)
	}
	if got := dk.String(); got != "DerivedKey{type=Ed25519 path=m/74'/0'/0'/0' public_key="+hex.EncodeToString(dk.PublicKey())+" private_key=[REDACTED]}" {
		t.Fatal(got)
	}
	ejs, _ := json.Marshal(ek)
	if !strings.Contains(string(ejs), `"chain_code":"[REDACTED]"`) {
		t.Fatal(string(ejs))
	}
	aes, _ := v.DeriveEncryptionKey(PathEncryption)
	if js, _ := json.Marshal(aes); !strings.Contains(string(js), `"public_key":""`) {
		t.Fatal(string(js))
	}
	var back DerivedKey
	var eback ExtendedKey
	if err := json.Unmarshal(js, &back); !errors.Is(err, ErrRedacted) {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ejs, &eback); !errors.Is(err, ErrRedacted) {
		t.Fatal(err)
	}
	if fmt.Sprintf("%v %#v %s", v, v, v) != "Vault{unlocked} Vault{unlocked} Vault{unlocked}" {
		t.Fatal(fmt.Sprint(v))
	}
	if _, err := aes.Ed25519PrivateKey(); !errors.Is(err, ErrUnsupportedKeyType) {
		t.Fatal(err)
	}
}

// Checklist 37.
func TestSentinelTexts(t *testing.T) {
	want := map[error]string{
		ErrLocked: "vault: locked; call Unlock first", ErrAlreadyUnlocked: "vault: already unlocked",
		ErrInvalidMnemonic: "vault: invalid mnemonic", ErrInvalidPassphrase: "vault: passphrase is not valid UTF-8",
		ErrInvalidWordCount: "vault: word count must be 12, 15, 18, 21 or 24",
		ErrInvalidEntropy:   "vault: entropy must be 16, 20, 24, 28 or 32 bytes",
		ErrInvalidSeed:      "vault: seed must be 16 to 64 bytes", ErrInvalidPath: "vault: invalid derivation path",
		ErrHardenedOnly:      "vault: ed25519 derivation supports hardened indices only",
		ErrInvalidKeyVersion: "vault: key version must be between 2 and 2147483649",
		ErrInvalidKey:        "vault: invalid key", ErrUnsupportedKeyType: "vault: unsupported key type",
		ErrMalformedData: "vault: malformed encrypted data", ErrDecryption: "vault: decryption failed",
		ErrInvalidPlaintext: "vault: plaintext is not valid UTF-8",
		ErrRedacted:         "vault: redacted key material cannot be unmarshalled",
	}
	for e, s := range want {
		if e.Error() != s {
			t.Errorf("%q != %q", e.Error(), s)
		}
	}
	// No error carries the passphrase or any seed/key hex.
	seedHex := hex.EncodeToString(mustSeed(t))
	_, err1 := SeedFromMnemonic([]byte("abandon abandon"), []byte("TREZOR"))
	_, err2 := DeriveEd25519FromSeed(mustSeed(t), "m/1")
	for _, err := range []error{err1, err2} {
		if err == nil || strings.Contains(err.Error(), "TREZOR") || strings.Contains(err.Error(), seedHex[:16]) {
			t.Fatalf("error text: %v", err)
		}
	}
}

// Checklist 38: the exported API takes and returns no string but paths, addresses and
// String/GoString/Error results.
func TestNoStringSecretsInAPI(t *testing.T) {
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	var parsed []*ast.File
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(f, "secret_on") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, af)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	pkg, err := conf.Check("github.com/alkdev/alknet/vault", fset, parsed, nil)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{ // function.param-or-result names that may be strings
		"ParsePath.s": true, "DevicePath.result": true, "EncryptionPath.result": true, "EthereumAddress.result": true,
		"DeriveEd25519FromSeed.path": true, "DeriveSecp256k1FromSeed.path": true, "DeriveEd25519.path": true,
		"DeriveEncryptionKey.path": true, "DeriveEthereumKey.path": true, "Path.result": true,
	}
	check := func(name string, sig *types.Signature) {
		for i := 0; i < sig.Params().Len(); i++ {
			p := sig.Params().At(i)
			if types.Identical(p.Type(), types.Typ[types.String]) && !allowed[name+"."+p.Name()] {
				t.Errorf("%s takes a string %s", name, p.Name())
			}
		}
		for i := 0; i < sig.Results().Len(); i++ {
			r := sig.Results().At(i)
			if types.Identical(r.Type(), types.Typ[types.String]) && !allowed[name+".result"] &&
				name != "String" && name != "GoString" && name != "Error" {
				t.Errorf("%s returns a string", name)
			}
		}
	}
	scope := pkg.Scope()
	for _, n := range scope.Names() {
		obj := scope.Lookup(n)
		if !obj.Exported() {
			continue
		}
		if fn, ok := obj.(*types.Func); ok {
			check(n, fn.Type().(*types.Signature))
		}
		if tn, ok := obj.(*types.TypeName); ok {
			for _, typ := range []types.Type{tn.Type(), types.NewPointer(tn.Type())} {
				ms := types.NewMethodSet(typ)
				for i := 0; i < ms.Len(); i++ {
					m := ms.At(i).Obj()
					if m.Exported() {
						check(m.Name(), m.Type().(*types.Signature))
					}
				}
			}
		}
	}
}

// Checklist 41: no forbidden imports.
func TestImports(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			switch strings.Trim(imp.Path.Value, `"`) {
			case "net", "os", "os/exec", "log", "syscall":
				t.Errorf("%s imports %s", f, imp.Path.Value)
			}
		}
	}
}
