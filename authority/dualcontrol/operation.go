package dualcontrol

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
)

// operation is an act officers may put under dual control. decode checks
// a proposal's parameters and binds them to the act.
type operation interface {
	decode(raw json.RawMessage) (proposed, error)
}

// proposed is a proposal's parameters, checked, parsed and bound to their
// operation.
type proposed struct {
	// params are the parameters as the proposal records them (and its
	// ID hashes them): normalised, marshalled to JSON.
	params any
	// actors are the officers who alone propose and vote on it (see
	// mayAct; a scheme-wide act is always the scheme's officers').
	actors actors
	// components is how many key components the ceremony collects, each
	// with its officer's approval; 0 for every other operation.
	components int
	// run performs the act for the proposal of that ID and says what it
	// did.
	run func(ctx context.Context, id string) (string, error)
}

// actors say whose officers act on a proposal: one operator's, or —
// scheme set, saying why — the scheme's. The zero value is any officer
// of the registry, which no operation has: each says who acts on it.
type actors struct {
	operator string
	scheme   string
}

// op is an operation whose parameters officers write as P and which runs
// from the values R that parse makes of them: nothing is parsed twice,
// and no parameter reaches run unchecked.
type op[P, R any] struct {
	// parse checks the parameters, normalises them in place (they are
	// recorded as they are then) and returns what the act needs.
	parse func(*P) (R, error)
	// actors, if set, says whose officers act on it.
	actors func(R) actors
	// components, if set, is how many components the ceremony collects.
	components func(R) int
	run        func(ctx context.Context, id string, r R) (string, error)
}

func (d op[P, R]) decode(raw json.RawMessage) (proposed, error) {
	p, r, err := parsed(raw, d.parse)
	if err != nil {
		return proposed{}, err
	}
	out := proposed{params: p, run: func(ctx context.Context, id string) (string, error) { return d.run(ctx, id, r) }}
	if d.actors != nil {
		out.actors = d.actors(r)
	}
	if d.components != nil {
		out.components = d.components(r)
	}
	return out, nil
}

// parsed decodes parameters strictly and parses them.
func parsed[P, R any](raw json.RawMessage, parse func(*P) (R, error)) (P, R, error) {
	var p P
	var r R
	if err := strict(raw, &p); err != nil {
		return p, r, err
	}
	r, err := parse(&p)
	return p, r, err
}

// strict decodes JSON refusing unknown fields, a key that appears twice
// in one object, and a key that names a field of v only when case is
// ignored: encoding/json would keep the last duplicate and match keys
// case-insensitively, so text an officer reads as one set of parameters
// could propose another (the first "amount" shown, a later one decoded).
// What is recorded is then exactly what was written, once.
func strict(raw json.RawMessage, v any) error {
	if err := exactKeys(json.NewDecoder(bytes.NewReader(raw)), reflect.TypeOf(v)); err != nil {
		return errkind.Wrap(errkind.InvalidInput, err, "parameters")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// exactKeys reads one JSON value from d and refuses, in every object in
// it, a key that appears twice, and, where the value is decoded into a
// struct of type t, a key that is not one of its fields' JSON names
// exactly but matches one ignoring case. Malformed JSON is left for the
// decoder to refuse.
func exactKeys(d *json.Decoder, t reflect.Type) error {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		t = t.Elem()
	}
	tok, err := d.Token()
	if err != nil {
		return nil
	}
	switch tok {
	case json.Delim('['):
		for d.More() {
			if err := exactKeys(d, t); err != nil {
				return err
			}
		}
		_, _ = d.Token()
	case json.Delim('{'):
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for d.More() {
			tok, err := d.Token()
			key, ok := tok.(string)
			if err != nil || !ok {
				return nil
			}
			if seen[key] {
				return fmt.Errorf("the key %q appears twice", key)
			}
			seen[key] = true
			ft, exact := fields[key]
			if !exact && fields != nil {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return fmt.Errorf("the key %q is spelt %q", key, name)
					}
				}
			}
			if err := exactKeys(d, ft); err != nil {
				return err
			}
		}
		_, _ = d.Token()
	}
	return nil
}

// jsonFields are the JSON names of a struct's fields, those of embedded
// structs included, with their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			maps.Copy(out, jsonFields(f.Type))
		case name == "":
			out[f.Name] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}

// same parses parameters that are already what their act needs.
func same[P any](check func(P) error) func(*P) (P, error) {
	return func(p *P) (P, error) { return *p, check(*p) }
}

// table is every operation, by name.
func (o *Officers) table() map[string]operation {
	return map[string]operation{
		OpKeyGenerate: op[KeyGenerateParams, newKey]{parse: parseKeyGenerate, run: o.keyGenerate,
			actors: func(k newKey) actors { return o.keyActors(k.ref, k.role) }},
		OpKeyImportTR31: op[ImportTR31Params, tr31Import]{parse: parseImportTR31, run: o.importTR31,
			actors: func(k tr31Import) actors { return o.keyActors(k.ref, k.role) }},
		OpKeyImportKWP: op[ImportKWPParams, kwpImport]{parse: parseImportKWP, run: o.importKWP,
			actors: func(k kwpImport) actors { return o.keyActors(k.key.ref, k.key.role) }},
		OpKeyExport: op[ExportParams, keyExport]{parse: o.parseExport, run: o.keyExport},
		OpKeyComponents: op[ComponentsParams, componentImport]{parse: parseComponents, run: o.importComponents,
			components: func(c componentImport) int { return c.components },
			actors:     func(c componentImport) actors { return o.keyActors(c.key.ref, c.key.role) }},
		OpAllowanceTopUp: op[TopUpParams, TopUpParams]{parse: same(checkTopUp), run: o.topUp, actors: func(p TopUpParams) actors {
			operator, _, _ := strings.Cut(p.Device, "/")
			return actors{operator: operator} // the device's operator's officers top it up
		}},
		OpOfficerRevoke:  op[OfficerRevokeParams, OfficerRevokeParams]{parse: parseOfficerRevoke, run: o.officerRevoke, actors: o.officerRevokeActors},
		OpPolicyActivate: op[PolicyActivateParams, PolicyActivateParams]{parse: same(checkPolicyActivate), run: o.policyActivate},
		OpCACreate:       op[CACreateParams, ca.CreateRequest]{parse: parseCACreate, run: o.caCreate},
		OpCARevoke:       op[CARevokeParams, CARevokeParams]{parse: same(checkCARevoke), run: o.caRevoke},
		OpCertIssue:      op[CertIssueParams, certRequest]{parse: parseCertIssue, run: o.certIssue},
		OpOfficerAdd: op[OfficerParams, OfficerParams]{parse: same(checkOfficer), run: func(ctx context.Context, _ string, p OfficerParams) (string, error) {
			return o.changeOfficer(ctx, p, true)
		}},
		OpOfficerRemove: op[OfficerParams, OfficerParams]{parse: same(checkOfficer), run: func(ctx context.Context, _ string, p OfficerParams) (string, error) {
			return o.changeOfficer(ctx, p, false)
		}},
	}
}
