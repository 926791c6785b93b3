// Package api is the node API's contract beyond its generated code: the
// bounds each request is checked against before the node acts on it.
//
// The schema is proto/fractal/v1 (package fractal.v1); `make proto`
// regenerates the message types (api/fractalv1) and the Connect client and
// handler (api/fractalv1/fractalv1connect) from it. docs/API.md describes
// every method; decision 110 says why the API is shaped as it is.
package api

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/fractalvm/fractal/api/fractalv1"
)

// Check returns an error naming the first field of req, in field order and
// depth first, whose value exceeds the bounds the schema gives it
// (fractal.v1.bounds): a string or bytes longer than max_len, a repeated
// field with more than max_count elements (or an element longer than
// max_len), an integer above max_value. It returns nil when every field is
// within its bounds. Unknown fields are left to the transport's size limit.
func Check(req proto.Message) error {
	return check(req.ProtoReflect(), "")
}

func check(m protoreflect.Message, prefix string) error {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		name, b, v := prefix+string(fd.Name()), boundsOf(fd), m.Get(fd)
		switch {
		case fd.IsMap():
			if n := uint64(v.Map().Len()); n > b.GetMaxCount() {
				return fmt.Errorf("%s: %d entries exceed the limit %d", name, n, b.GetMaxCount())
			}
		case fd.IsList():
			l := v.List()
			if n := uint64(l.Len()); n > b.GetMaxCount() {
				return fmt.Errorf("%s: %d elements exceed the limit %d", name, n, b.GetMaxCount())
			}
			for j := range l.Len() {
				if err := checkValue(fd, b, l.Get(j), fmt.Sprintf("%s[%d]", name, j)); err != nil {
					return err
				}
			}
		default:
			if err := checkValue(fd, b, v, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkValue checks one value of field fd. A string, bytes or repeated
// field without bounds admits nothing but its zero value: the schema test
// keeps every request field bounded, and this keeps a field added without
// bounds from being unbounded.
func checkValue(fd protoreflect.FieldDescriptor, b *fractalv1.Bounds, v protoreflect.Value, name string) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if n := uint64(len(v.String())); n > b.GetMaxLen() {
			return fmt.Errorf("%s: %d bytes exceed the limit %d", name, n, b.GetMaxLen())
		}
	case protoreflect.BytesKind:
		if n := uint64(len(v.Bytes())); n > b.GetMaxLen() {
			return fmt.Errorf("%s: %d bytes exceed the limit %d", name, n, b.GetMaxLen())
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return check(v.Message(), name+".")
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if b.GetMaxValue() != 0 && v.Uint() > b.GetMaxValue() {
			return fmt.Errorf("%s: %d exceeds the maximum %d", name, v.Uint(), b.GetMaxValue())
		}
	}
	return nil
}

// PageSize returns the page size req asks for: its page_size field, or the
// field's default_value when page_size is 0. Call it after Check, which
// refuses a page size above the maximum. It returns 0 for a request without
// a page_size field.
func PageSize(req proto.Message) int {
	m := req.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("page_size")
	if fd == nil {
		return 0
	}
	if n := m.Get(fd).Uint(); n != 0 {
		return int(n)
	}
	return int(boundsOf(fd).GetDefaultValue())
}

// MaxCount returns the max_count of req's repeated field name: how many
// elements it may hold. It panics when req has no such field (a
// programming error).
func MaxCount(req proto.Message, name protoreflect.Name) int {
	fd := req.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		panic(fmt.Sprintf("%T has no field %s", req, name))
	}
	return int(boundsOf(fd).GetMaxCount())
}

// boundsOf returns fd's bounds, or nil when it has none.
func boundsOf(fd protoreflect.FieldDescriptor) *fractalv1.Bounds {
	opts := fd.Options()
	if opts == nil {
		return nil
	}
	b, _ := proto.GetExtension(opts, fractalv1.E_Bounds).(*fractalv1.Bounds)
	return b
}
