package samdv1_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/samd-io/samd/api/samdv1"
)

// The API promises that fields and enum values only append: a field or
// value keeps its number, name and type for ever, a retired one has its
// number reserved, and a new one takes a number above every number its
// message or enum ever had. samd.snapshot.json records every field, enum
// value and method the API ever had; `make api-snapshot` adds what the
// proto appended (it never drops an entry, and writes nothing while the
// check fails).
var update = flag.Bool("update", false, "add the proto's new fields, values and methods to the snapshot")

const snapshotFile = "../samd/v1/samd.snapshot.json"

// snapshot is the API's shape, sorted by full name and number.
type snapshot struct {
	Messages []messageShape `json:"messages"`
	Enums    []enumShape    `json:"enums"`
	Services []serviceShape `json:"services"`
}

type messageShape struct {
	Name   string       `json:"name"`
	Fields []fieldShape `json:"fields"`
}

type fieldShape struct {
	Number  int32  `json:"number"`
	Name    string `json:"name"`
	Type    string `json:"type"`              // kind, with the message or enum name
	Label   string `json:"label,omitempty"`   // repeated, map, optional (explicit presence)
	Oneof   string `json:"oneof,omitempty"`   // the real oneof it belongs to
	Retired bool   `json:"retired,omitempty"` // removed, its number reserved
}

type enumShape struct {
	Name   string       `json:"name"`
	Values []valueShape `json:"values"`
}

type valueShape struct {
	Number  int32  `json:"number"`
	Name    string `json:"name"`
	Retired bool   `json:"retired,omitempty"`
}

type serviceShape struct {
	Name    string        `json:"name"`
	Methods []methodShape `json:"methods"`
}

type methodShape struct {
	Name            string `json:"name"`
	Input           string `json:"input"`
	Output          string `json:"output"`
	ClientStreaming bool   `json:"client_streaming,omitempty"`
	ServerStreaming bool   `json:"server_streaming,omitempty"`
}

func TestAPIAppendOnly(t *testing.T) {
	fd := samdv1.File_samd_v1_samd_proto
	var snap snapshot
	old, err := os.ReadFile(snapshotFile)
	switch {
	case os.IsNotExist(err) && *update:
		// The first snapshot: today's API.
	case err != nil:
		t.Fatal(err)
	default:
		if err := json.Unmarshal(old, &snap); err != nil {
			t.Fatalf("%s: %v", snapshotFile, err)
		}
	}
	next, problems := appendOnly(snap, fd)
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) > 0 {
		t.Fatal("the API must only append (api/samd/v1/samd.proto); the snapshot is unchanged")
	}
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if bytes.Equal(b, old) {
		return
	}
	if *update {
		if err := os.WriteFile(snapshotFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s updated", snapshotFile)
		return
	}
	t.Fatalf("%s lacks what samd.proto appended: run `make api-snapshot` and commit the snapshot", snapshotFile)
}

// appendOnly checks the descriptor against the snapshot and returns the
// snapshot with the descriptor's additions and retirements.
func appendOnly(snap snapshot, fd protoreflect.FileDescriptor) (snapshot, []string) {
	cur := shapeOf(fd)
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var next snapshot

	curMsgs := map[string]protoreflect.MessageDescriptor{}
	walkMessages(fd.Messages(), func(m protoreflect.MessageDescriptor) { curMsgs[string(m.FullName())] = m })
	for _, cm := range cur.Messages {
		m := curMsgs[cm.Name]
		om, found := findShape(snap.Messages, cm.Name, func(s messageShape) string { return s.Name })
		if !found {
			next.Messages = append(next.Messages, cm)
			continue
		}
		merged := messageShape{Name: cm.Name, Fields: []fieldShape{}}
		maxOld := int32(0)
		for _, of := range om.Fields {
			maxOld = max(maxOld, of.Number)
			nf, found := findShape(cm.Fields, of.Number, func(s fieldShape) int32 { return s.Number })
			switch {
			case found && of.Retired:
				bad("%s: field %d (%s) was retired and is back as %s", cm.Name, of.Number, of.Name, nf.Name)
			case found && nf != of:
				bad("%s: field %d changed from %+v to %+v", cm.Name, of.Number, of, nf)
			case !found && !m.ReservedRanges().Has(protoreflect.FieldNumber(of.Number)):
				bad("%s: field %d (%s) removed without reserving its number", cm.Name, of.Number, of.Name)
			case !found:
				of.Retired = true
			}
			merged.Fields = append(merged.Fields, of)
		}
		for _, nf := range cm.Fields {
			if _, found := findShape(om.Fields, nf.Number, func(s fieldShape) int32 { return s.Number }); found {
				continue
			}
			if nf.Number <= maxOld {
				bad("%s: new field %s takes number %d, at or below the highest number the message ever had (%d)", cm.Name, nf.Name, nf.Number, maxOld)
			}
			merged.Fields = append(merged.Fields, nf)
		}
		slices.SortFunc(merged.Fields, func(a, b fieldShape) int { return int(a.Number - b.Number) })
		next.Messages = append(next.Messages, merged)
	}
	for _, om := range snap.Messages {
		if _, found := curMsgs[om.Name]; !found {
			bad("message %s removed", om.Name)
		}
	}

	curEnums := map[string]protoreflect.EnumDescriptor{}
	walkEnums(fd, func(e protoreflect.EnumDescriptor) { curEnums[string(e.FullName())] = e })
	for _, ce := range cur.Enums {
		e := curEnums[ce.Name]
		oe, found := findShape(snap.Enums, ce.Name, func(s enumShape) string { return s.Name })
		if !found {
			next.Enums = append(next.Enums, ce)
			continue
		}
		merged := enumShape{Name: ce.Name, Values: []valueShape{}}
		maxOld := int32(0)
		for _, ov := range oe.Values {
			maxOld = max(maxOld, ov.Number)
			nv, found := findShape(ce.Values, ov.Number, func(s valueShape) int32 { return s.Number })
			switch {
			case found && ov.Retired:
				bad("%s: value %d (%s) was retired and is back as %s", ce.Name, ov.Number, ov.Name, nv.Name)
			case found && nv != ov:
				bad("%s: value %d renamed from %s to %s", ce.Name, ov.Number, ov.Name, nv.Name)
			case !found && !e.ReservedRanges().Has(protoreflect.EnumNumber(ov.Number)):
				bad("%s: value %d (%s) removed without reserving its number", ce.Name, ov.Number, ov.Name)
			case !found:
				ov.Retired = true
			}
			merged.Values = append(merged.Values, ov)
		}
		for _, nv := range ce.Values {
			if _, found := findShape(oe.Values, nv.Number, func(s valueShape) int32 { return s.Number }); found {
				continue
			}
			if nv.Number <= maxOld {
				bad("%s: new value %s takes number %d, at or below the highest number the enum ever had (%d)", ce.Name, nv.Name, nv.Number, maxOld)
			}
			merged.Values = append(merged.Values, nv)
		}
		slices.SortFunc(merged.Values, func(a, b valueShape) int { return int(a.Number - b.Number) })
		next.Enums = append(next.Enums, merged)
	}
	for _, oe := range snap.Enums {
		if _, found := curEnums[oe.Name]; !found {
			bad("enum %s removed", oe.Name)
		}
	}

	for _, cs := range cur.Services {
		osv, found := findShape(snap.Services, cs.Name, func(s serviceShape) string { return s.Name })
		if !found {
			next.Services = append(next.Services, cs)
			continue
		}
		for _, om := range osv.Methods {
			nm, found := findShape(cs.Methods, om.Name, func(s methodShape) string { return s.Name })
			switch {
			case !found:
				bad("%s: method %s removed", cs.Name, om.Name)
			case nm != om:
				bad("%s: method %s changed from %+v to %+v", cs.Name, om.Name, om, nm)
			}
		}
		next.Services = append(next.Services, cs)
	}
	for _, osv := range snap.Services {
		if _, found := findShape(cur.Services, osv.Name, func(s serviceShape) string { return s.Name }); !found {
			bad("service %s removed", osv.Name)
		}
	}
	return next, problems
}

// shapeOf records the file's messages (map entries aside), enums and
// services, sorted by full name.
func shapeOf(fd protoreflect.FileDescriptor) snapshot {
	var s snapshot
	walkMessages(fd.Messages(), func(m protoreflect.MessageDescriptor) {
		ms := messageShape{Name: string(m.FullName()), Fields: []fieldShape{}}
		for i := range m.Fields().Len() {
			ms.Fields = append(ms.Fields, fieldShapeOf(m.Fields().Get(i)))
		}
		slices.SortFunc(ms.Fields, func(a, b fieldShape) int { return int(a.Number - b.Number) })
		s.Messages = append(s.Messages, ms)
	})
	walkEnums(fd, func(e protoreflect.EnumDescriptor) {
		es := enumShape{Name: string(e.FullName()), Values: []valueShape{}}
		for i := range e.Values().Len() {
			v := e.Values().Get(i)
			es.Values = append(es.Values, valueShape{Number: int32(v.Number()), Name: string(v.Name())})
		}
		slices.SortFunc(es.Values, func(a, b valueShape) int { return int(a.Number - b.Number) })
		s.Enums = append(s.Enums, es)
	})
	for i := range fd.Services().Len() {
		sd := fd.Services().Get(i)
		ss := serviceShape{Name: string(sd.FullName()), Methods: []methodShape{}}
		for j := range sd.Methods().Len() {
			md := sd.Methods().Get(j)
			ss.Methods = append(ss.Methods, methodShape{
				Name:            string(md.Name()),
				Input:           string(md.Input().FullName()),
				Output:          string(md.Output().FullName()),
				ClientStreaming: md.IsStreamingClient(),
				ServerStreaming: md.IsStreamingServer(),
			})
		}
		slices.SortFunc(ss.Methods, func(a, b methodShape) int { return strings.Compare(a.Name, b.Name) })
		s.Services = append(s.Services, ss)
	}
	slices.SortFunc(s.Messages, func(a, b messageShape) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Enums, func(a, b enumShape) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Services, func(a, b serviceShape) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func fieldShapeOf(f protoreflect.FieldDescriptor) fieldShape {
	fs := fieldShape{Number: int32(f.Number()), Name: string(f.Name()), Type: typeOf(f)}
	switch {
	case f.IsMap():
		fs.Label = "map"
		fs.Type = "map<" + typeOf(f.MapKey()) + ", " + typeOf(f.MapValue()) + ">"
	case f.IsList():
		fs.Label = "repeated"
	case f.HasOptionalKeyword():
		fs.Label = "optional"
	}
	if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
		fs.Oneof = string(o.Name())
	}
	return fs
}

func typeOf(f protoreflect.FieldDescriptor) string {
	switch f.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return "message " + string(f.Message().FullName())
	case protoreflect.EnumKind:
		return "enum " + string(f.Enum().FullName())
	}
	return f.Kind().String()
}

func walkMessages(ms protoreflect.MessageDescriptors, fn func(protoreflect.MessageDescriptor)) {
	for i := range ms.Len() {
		m := ms.Get(i)
		if m.IsMapEntry() {
			continue
		}
		fn(m)
		walkMessages(m.Messages(), fn)
	}
}

func walkEnums(fd protoreflect.FileDescriptor, fn func(protoreflect.EnumDescriptor)) {
	each := func(es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			fn(es.Get(i))
		}
	}
	each(fd.Enums())
	walkMessages(fd.Messages(), func(m protoreflect.MessageDescriptor) { each(m.Enums()) })
}

func findShape[S any, K comparable](list []S, key K, keyOf func(S) K) (S, bool) {
	for _, s := range list {
		if keyOf(s) == key {
			return s, true
		}
	}
	var zero S
	return zero, false
}

// edit changes a copy of samd.proto's descriptor.
type edit func(t *testing.T, fd *descriptorpb.FileDescriptorProto)

func TestAppendOnlyRules(t *testing.T) {
	cases := []struct {
		name  string
		base  edit   // the API the snapshot was taken of (nil: today's)
		steps []edit // successive versions of the API, each checked against the snapshot so far
		fail  bool   // whether the last step must fail
	}{
		{name: "ok/unchanged", steps: []edit{nil}},
		{name: "ok/field appended", steps: []edit{addField("KeyRef", "label", 3)}},
		{name: "ok/fields appended twice", steps: []edit{addField("KeyRef", "label", 3), both(addField("KeyRef", "label", 3), addField("KeyRef", "owner", 4))}},
		{name: "ok/field retired, its number reserved", steps: []edit{retireField("KeyRef", 2)}},
		{name: "ok/field appended after a retired one", steps: []edit{retireField("KeyRef", 2), both(retireField("KeyRef", 2), addField("KeyRef", "revision", 3))}},
		{name: "ok/enum value appended", steps: []edit{addValue("KCVMethod", "KCV_METHOD_X", 3)}},
		{name: "ok/enum value retired, its number reserved", steps: []edit{retireValue("KCVMethod", 2)}},
		{name: "ok/method added", steps: []edit{addMethod("DiversificationService", "Ping", "KeyRef", "KeyRef")}},
		{name: "ok/message added", steps: []edit{addMessage("Spare")}},
		{name: "fail/field removed without reserving its number", steps: []edit{removeField("KeyRef", 2)}, fail: true},
		{name: "fail/field renumbered", steps: []edit{renumberField("KeyRef", 2, 3)}, fail: true},
		{name: "fail/field renamed", steps: []edit{setField("KeyRef", 2, func(f *descriptorpb.FieldDescriptorProto) { f.Name = proto.String("ver") })}, fail: true},
		{name: "fail/field type changed", steps: []edit{setField("KeyRef", 2, func(f *descriptorpb.FieldDescriptorProto) { f.Type = uint64Type })}, fail: true},
		{name: "fail/field made repeated", steps: []edit{setField("KeyRef", 2, func(f *descriptorpb.FieldDescriptorProto) { f.Label = repeated })}, fail: true},
		{name: "fail/new field in a gap", base: renumberField("KeyRef", 2, 5), steps: []edit{both(renumberField("KeyRef", 2, 5), addField("KeyRef", "label", 3))}, fail: true},
		{name: "fail/retired field number reused", steps: []edit{retireField("KeyRef", 2), both(removeField("KeyRef", 2), addField("KeyRef", "revision", 2))}, fail: true},
		{name: "fail/enum value removed without reserving its number", steps: []edit{removeValue("KCVMethod", 2)}, fail: true},
		{name: "fail/enum value renamed", steps: []edit{setValue("KCVMethod", 2, "KCV_METHOD_CMAC")}, fail: true},
		{name: "fail/enum value renumbered", steps: []edit{both(removeValue("KCVMethod", 2), addValue("KCVMethod", "KCV_METHOD_CMAC_ZERO", 3))}, fail: true},
		{name: "fail/new enum value in a gap", base: both(removeValue("KCVMethod", 2), addValue("KCVMethod", "KCV_METHOD_CMAC_ZERO", 5)),
			steps: []edit{both(removeValue("KCVMethod", 2), addValue("KCVMethod", "KCV_METHOD_CMAC_ZERO", 5), addValue("KCVMethod", "KCV_METHOD_X", 3))}, fail: true},
		{name: "fail/retired enum value reused", steps: []edit{retireValue("KCVMethod", 2), both(removeValue("KCVMethod", 2), addValue("KCVMethod", "KCV_METHOD_X", 2))}, fail: true},
		{name: "fail/method removed", steps: []edit{addMethod("DiversificationService", "Ping", "KeyRef", "KeyRef"), nil}, fail: true},
		{name: "fail/method input changed", steps: []edit{addMethod("DiversificationService", "Ping", "KeyRef", "KeyRef"), addMethod("DiversificationService", "Ping", "KeyInfo", "KeyRef")}, fail: true},
		{name: "fail/method made streaming", steps: []edit{streamMethod("DiversificationService", "ExportDiversifiedKey")}, fail: true},
		{name: "fail/message removed", steps: []edit{addMessage("Spare"), nil}, fail: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := shapeOf(edited(t, c.base))
			for i, step := range c.steps {
				next, problems := appendOnly(snap, edited(t, step))
				if last := i == len(c.steps)-1; !last || !c.fail {
					if len(problems) > 0 {
						t.Fatalf("step %d: %v", i, problems)
					}
					snap = next
					continue
				}
				if len(problems) == 0 {
					t.Fatalf("step %d passed; it must fail", i)
				}
				t.Log(problems)
			}
		})
	}
}

// edited returns the descriptor of a small API of the same shape as
// samd.proto, with an edit applied:
//
//	enum KCVMethod { KCV_METHOD_UNSPECIFIED = 0; KCV_METHOD_ENCRYPT_ZERO = 1; KCV_METHOD_CMAC_ZERO = 2; }
//	message KeyRef { string name = 1; uint32 version = 2; }
//	message KeyInfo { KeyRef key = 1; KCVMethod method = 2; }
//	service DiversificationService { rpc ExportDiversifiedKey(KeyRef) returns (KeyInfo); }
func edited(t *testing.T, e edit) protoreflect.FileDescriptor {
	t.Helper()
	field := func(name string, number int32, typ descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(number),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: typ.Enum()}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	value := func(name string, number int32) *descriptorpb.EnumValueDescriptorProto {
		return &descriptorpb.EnumValueDescriptorProto{Name: proto.String(name), Number: proto.Int32(number)}
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("compat/v1/compat.proto"), Package: proto.String("samd.v1"), Syntax: proto.String("proto3"),
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("KCVMethod"), Value: []*descriptorpb.EnumValueDescriptorProto{
			value("KCV_METHOD_UNSPECIFIED", 0), value("KCV_METHOD_ENCRYPT_ZERO", 1), value("KCV_METHOD_CMAC_ZERO", 2),
		}}},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("KeyRef"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
				field("version", 2, descriptorpb.FieldDescriptorProto_TYPE_UINT32, ""),
			}},
			{Name: proto.String("KeyInfo"), Field: []*descriptorpb.FieldDescriptorProto{
				field("key", 1, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".samd.v1.KeyRef"),
				field("method", 2, descriptorpb.FieldDescriptorProto_TYPE_ENUM, ".samd.v1.KCVMethod"),
			}},
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("DiversificationService"), Method: []*descriptorpb.MethodDescriptorProto{
			{Name: proto.String("ExportDiversifiedKey"), InputType: proto.String(".samd.v1.KeyRef"), OutputType: proto.String(".samd.v1.KeyInfo")},
		}}},
	}
	if e != nil {
		e(t, fdp)
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func both(edits ...edit) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		for _, e := range edits {
			e(t, fd)
		}
	}
}

func message(t *testing.T, fd *descriptorpb.FileDescriptorProto, name string) *descriptorpb.DescriptorProto {
	for _, m := range fd.MessageType {
		if m.GetName() == name {
			return m
		}
	}
	t.Fatalf("no message %s", name)
	return nil
}

func enum(t *testing.T, fd *descriptorpb.FileDescriptorProto, name string) *descriptorpb.EnumDescriptorProto {
	for _, e := range fd.EnumType {
		if e.GetName() == name {
			return e
		}
	}
	t.Fatalf("no enum %s", name)
	return nil
}

func addField(msg, name string, number int32) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		m := message(t, fd, msg)
		m.Field = append(m.Field, &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(number),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
		})
	}
}

func setField(msg string, number int32, set func(*descriptorpb.FieldDescriptorProto)) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		for _, f := range message(t, fd, msg).Field {
			if f.GetNumber() == number {
				set(f)
				return
			}
		}
		t.Fatalf("%s has no field %d", msg, number)
	}
}

func renumberField(msg string, from, to int32) edit {
	return setField(msg, from, func(f *descriptorpb.FieldDescriptorProto) { f.Number = proto.Int32(to) })
}

var (
	uint64Type = descriptorpb.FieldDescriptorProto_TYPE_UINT64.Enum()
	repeated   = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
)

func removeField(msg string, number int32) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		m := message(t, fd, msg)
		m.Field = slices.DeleteFunc(m.Field, func(f *descriptorpb.FieldDescriptorProto) bool { return f.GetNumber() == number })
	}
}

func retireField(msg string, number int32) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		removeField(msg, number)(t, fd)
		m := message(t, fd, msg)
		m.ReservedRange = append(m.ReservedRange, &descriptorpb.DescriptorProto_ReservedRange{Start: proto.Int32(number), End: proto.Int32(number + 1)})
	}
}

func addValue(enumName, name string, number int32) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		e := enum(t, fd, enumName)
		e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(name), Number: proto.Int32(number)})
	}
}

func setValue(enumName string, number int32, name string) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		for _, v := range enum(t, fd, enumName).Value {
			if v.GetNumber() == number {
				v.Name = proto.String(name)
				return
			}
		}
		t.Fatalf("%s has no value %d", enumName, number)
	}
}

func removeValue(enumName string, number int32) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		e := enum(t, fd, enumName)
		e.Value = slices.DeleteFunc(e.Value, func(v *descriptorpb.EnumValueDescriptorProto) bool { return v.GetNumber() == number })
	}
}

func retireValue(enumName string, number int32) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		removeValue(enumName, number)(t, fd)
		e := enum(t, fd, enumName)
		// Enum reserved ranges are inclusive.
		e.ReservedRange = append(e.ReservedRange, &descriptorpb.EnumDescriptorProto_EnumReservedRange{Start: proto.Int32(number), End: proto.Int32(number)})
	}
}

func addMessage(name string) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		fd.MessageType = append(fd.MessageType, &descriptorpb.DescriptorProto{Name: proto.String(name)})
	}
}

func service(t *testing.T, fd *descriptorpb.FileDescriptorProto, name string) *descriptorpb.ServiceDescriptorProto {
	for _, s := range fd.Service {
		if s.GetName() == name {
			return s
		}
	}
	t.Fatalf("no service %s", name)
	return nil
}

func addMethod(svc, name, input, output string) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		s := service(t, fd, svc)
		s.Method = append(s.Method, &descriptorpb.MethodDescriptorProto{
			Name: proto.String(name), InputType: proto.String(".samd.v1." + input), OutputType: proto.String(".samd.v1." + output),
		})
	}
}

func streamMethod(svc, name string) edit {
	return func(t *testing.T, fd *descriptorpb.FileDescriptorProto) {
		for _, m := range service(t, fd, svc).Method {
			if m.GetName() == name {
				m.ServerStreaming = proto.Bool(true)
				return
			}
		}
		t.Fatalf("%s has no method %s", svc, name)
	}
}
