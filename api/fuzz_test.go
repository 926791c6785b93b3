package api

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/fractalvm/fractal/api/fractalv1"
)

// FuzzCheck decodes attacker bytes as each method's request, as the node
// will, and checks them: Check never panics, and a request it admits is
// admitted again after a round trip through its encoding.
func FuzzCheck(f *testing.F) {
	ms := methods()
	for _, req := range []proto.Message{
		&fractalv1.ListNotesRequest{Pattern: "*/*/*/*", PageSize: 101},
		&fractalv1.WatchRequest{NotePatterns: []string{"*/*/*/*", ""}, Receipts: true},
		&fractalv1.SubmitTransactionRequest{Tx: &fractalv1.SubmitTransactionRequest_TxJson{TxJson: "{}"}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		which := slices.IndexFunc(ms, func(m protoreflect.MethodDescriptor) bool {
			return m.Input().FullName() == req.ProtoReflect().Descriptor().FullName()
		})
		f.Add(uint8(which), b)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m := ms[int(which)%len(ms)]
		mt, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
		if err != nil {
			t.Fatal(err)
		}
		req := mt.New().Interface()
		if proto.Unmarshal(data, req) != nil || Check(req) != nil {
			return
		}
		again := mt.New().Interface()
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(b, again); err != nil {
			t.Fatal(err)
		}
		if err := Check(again); err != nil {
			t.Fatalf("%s admitted, then refused after a round trip: %v", m.Input().FullName(), err)
		}
	})
}
