package api

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// service is the one service of the schema.
var service = fractalv1.File_fractal_v1_fractal_proto.Services().ByName("FractalService")

// methods returns the service's methods in schema order.
func methods() []protoreflect.MethodDescriptor {
	ms := service.Methods()
	out := make([]protoreflect.MethodDescriptor, ms.Len())
	for i := range out {
		out[i] = ms.Get(i)
	}
	return out
}

// apiDoc returns the rows of the table that follows heading in docs/API.md,
// each row's cells with surrounding spaces and backquotes removed.
func apiDoc(t *testing.T, heading string) [][]string {
	t.Helper()
	f, err := os.Open("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	in, table := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## "+heading
		case in && strings.HasPrefix(line, "|"):
			table = true
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
			}
			if cells[0] == "method" || strings.HasPrefix(cells[0], "---") {
				continue
			}
			rows = append(rows, cells)
		case in && table && strings.TrimSpace(line) == "":
			in = false // the section's first table ended
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatalf("docs/API.md: no table under %q", heading)
	}
	return rows
}

// TestMethodsMatchDocs: docs/API.md's method table lists exactly the
// service's methods, in schema order, each with its kind.
func TestMethodsMatchDocs(t *testing.T) {
	var doc, schema []string
	for _, row := range apiDoc(t, "Methods") {
		doc = append(doc, row[0]+" "+row[1])
	}
	for _, m := range methods() {
		kind := "unary"
		if m.IsStreamingServer() {
			kind = "stream"
		}
		schema = append(schema, string(m.Name())+" "+kind)
	}
	if !slices.Equal(doc, schema) {
		t.Fatalf("docs/API.md lists\n%v\nthe schema has\n%v", doc, schema)
	}
}

// TestEveryRequestIsBounded: every string, bytes and repeated field of every
// request (nested messages included) has bounds, integers named page_size
// have a maximum and a default within it, no request has a map, and every
// List method pages with page_size, page_token and next_page_token. No
// method streams from the client.
func TestEveryRequestIsBounded(t *testing.T) {
	for _, m := range methods() {
		if m.IsStreamingClient() {
			t.Errorf("%s: client streams are not bounded by a request", m.Name())
		}
		checkBounded(t, string(m.Name()), m.Input(), map[protoreflect.FullName]bool{})
		if !strings.HasPrefix(string(m.Name()), "List") {
			continue
		}
		in, out := m.Input().Fields(), m.Output().Fields()
		for _, f := range []protoreflect.FieldDescriptor{in.ByName("page_size"), in.ByName("page_token"), out.ByName("next_page_token")} {
			if f == nil {
				t.Errorf("%s: a List method needs page_size, page_token and next_page_token", m.Name())
			}
		}
	}
}

func checkBounded(t *testing.T, path string, md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) {
	t.Helper()
	if seen[md.FullName()] {
		t.Errorf("%s: %s is recursive; a request must have a bounded depth", path, md.FullName())
		return
	}
	seen[md.FullName()] = true
	defer delete(seen, md.FullName())
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name, b := path+"."+string(fd.Name()), boundsOf(fd)
		if fd.IsMap() {
			t.Errorf("%s: maps are not allowed in requests", name)
			continue
		}
		if fd.IsList() && b.GetMaxCount() == 0 {
			t.Errorf("%s: repeated without max_count", name)
		}
		switch fd.Kind() {
		case protoreflect.StringKind, protoreflect.BytesKind:
			if b.GetMaxLen() == 0 {
				t.Errorf("%s: %s without max_len", name, fd.Kind())
			}
		case protoreflect.MessageKind, protoreflect.GroupKind:
			checkBounded(t, name, fd.Message(), seen)
		}
		if fd.Name() == "page_size" && (b.GetMaxValue() == 0 || b.GetDefaultValue() == 0 || b.GetDefaultValue() > b.GetMaxValue()) {
			t.Errorf("%s: page_size needs max_value and a default_value within it, have %v", name, b)
		}
	}
}

// TestLimitsMatchDocs: the limits table of docs/API.md holds exactly the
// bounds of the schema's request fields.
func TestLimitsMatchDocs(t *testing.T) {
	var doc, schema []string
	for _, row := range apiDoc(t, "Limits") {
		doc = append(doc, strings.Join(row, " | "))
	}
	for _, m := range methods() {
		fields := m.Input().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			b := boundsOf(fd)
			var limit string
			switch {
			case b == nil:
				continue
			case fd.IsList() && fd.Message() != nil: // each element's fields are bounded in its message
				limit = strconv.FormatUint(b.GetMaxCount(), 10) + " elements"
			case fd.IsList():
				limit = strconv.FormatUint(b.GetMaxCount(), 10) + " elements of " + strconv.FormatUint(b.GetMaxLen(), 10) + " bytes"
			case b.GetMaxValue() != 0:
				limit = strconv.FormatUint(b.GetMaxValue(), 10) + " (default " + strconv.FormatUint(b.GetDefaultValue(), 10) + ")"
			default:
				limit = strconv.FormatUint(b.GetMaxLen(), 10) + " bytes"
			}
			schema = append(schema, string(m.Name())+" | "+string(fd.Name())+" | "+limit)
		}
	}
	if !slices.Equal(doc, schema) {
		t.Fatalf("docs/API.md limits:\n%s\nschema:\n%s", strings.Join(doc, "\n"), strings.Join(schema, "\n"))
	}
}

// maxLen returns the max_len of field name of message md.
func maxLen(t *testing.T, md protoreflect.MessageDescriptor, name protoreflect.Name) int {
	t.Helper()
	fd := md.Fields().ByName(name)
	if fd == nil {
		t.Fatalf("%s has no field %s", md.FullName(), name)
	}
	return int(boundsOf(fd).GetMaxLen())
}

// TestBoundsMatchTheDecoders: the schema's bounds are the limits of the
// code that will read the fields, so the node refuses early exactly what it
// would refuse later, and refuses nothing it could accept.
func TestBoundsMatchTheDecoders(t *testing.T) {
	submit := (&fractalv1.SubmitTransactionRequest{}).ProtoReflect().Descriptor()
	simulate := (&fractalv1.SimulateRequest{}).ProtoReflect().Descriptor()
	batched := (&fractalv1.TransactionInput{}).ProtoReflect().Descriptor()
	for _, md := range []protoreflect.MessageDescriptor{submit, simulate, batched} {
		if got := maxLen(t, md, "tx_bytes"); got != phases.MaxTxBytes {
			t.Errorf("%s.tx_bytes: max_len %d, phases.MaxTxBytes is %d", md.Name(), got, phases.MaxTxBytes)
		}
		if got := maxLen(t, md, "tx_json"); got != phases.MaxTxJSON {
			t.Errorf("%s.tx_json: max_len %d, phases.MaxTxJSON is %d", md.Name(), got, phases.MaxTxJSON)
		}
	}
	if got := maxLen(t, (&fractalv1.DeployCodeRequest{}).ProtoReflect().Descriptor(), "code"); got != chain.MaxCodeBytes {
		t.Errorf("DeployCodeRequest.code: max_len %d, chain.MaxCodeBytes is %d", got, chain.MaxCodeBytes)
	}
	// A payload holds a transaction encoding plus the tfhe payload's own
	// few hundred bytes (fractal/encrypted.go, payloadOverhead).
	if got := maxLen(t, (&fractalv1.SubmitEncryptedRequest{}).ProtoReflect().Descriptor(), "payload"); got < phases.MaxTxBytes+1024 {
		t.Errorf("SubmitEncryptedRequest.payload: max_len %d is below a largest transaction's payload", got)
	}
	// A share batch: 42 bytes of header, 160 bytes per slot
	// (docs/formats/tfhe.md), at most one slot per transaction of a block.
	if got := maxLen(t, (&fractalv1.SubmitSharesRequest{}).ProtoReflect().Descriptor(), "shares"); got < 42+160*chain.MaxBlockTxs {
		t.Errorf("SubmitSharesRequest.shares: max_len %d is below a full batch's shares", got)
	}

	// The longest pattern and state key text: every part at its limit.
	prov := make([][]byte, notes.MaxProvenance)
	for i := range prov {
		prov[i] = make([]byte, notes.MaxProvenanceID)
	}
	key := notes.StateKey{Provenance: prov, Key: make([]byte, notes.MaxKey)}
	longest := len(notes.PatternFromKeyPrefix(key).String())
	for _, c := range []struct {
		md   protoreflect.MessageDescriptor
		name protoreflect.Name
	}{
		{(&fractalv1.ListNotesRequest{}).ProtoReflect().Descriptor(), "pattern"},
		{(&fractalv1.QueryWithProofRequest{}).ProtoReflect().Descriptor(), "state_key"},
		{(&fractalv1.WatchRequest{}).ProtoReflect().Descriptor(), "note_patterns"},
	} {
		if got := maxLen(t, c.md, c.name); got < longest {
			t.Errorf("%s.%s: max_len %d is below the longest pattern's %d bytes", c.md.Name(), c.name, got, longest)
		}
	}

	// Every field that holds one identifier holds exactly 64 hex digits.
	hexID := regexp.MustCompile(`(^|_)(id|hash)$|^to$`)
	for _, m := range methods() {
		fields := m.Input().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if hexID.MatchString(string(fd.Name())) && boundsOf(fd).GetMaxLen() != 64 {
				t.Errorf("%s.%s: an identifier is 64 hex digits, max_len is %d", m.Input().Name(), fd.Name(), boundsOf(fd).GetMaxLen())
			}
		}
	}
}

// TestNoKeysNoAdministration: no request field can carry a private key,
// seed or key share, and no method is an administrative verb.
func TestNoKeysNoAdministration(t *testing.T) {
	secret := regexp.MustCompile(`private|secret|seed|key_share|mnemonic|password`)
	admin := regexp.MustCompile(`^(Shutdown|Stop|Restart|Set|Update|Attach|Expire|Add|Remove|Delete|Seal|Config|Init|Admin)`)
	for _, m := range methods() {
		if admin.MatchString(string(m.Name())) {
			t.Errorf("%s: administrative verbs are not served over the network", m.Name())
		}
		fields := m.Input().Fields()
		for i := range fields.Len() {
			if name := string(fields.Get(i).Name()); secret.MatchString(name) {
				t.Errorf("%s.%s: the node never receives a private key", m.Input().Name(), name)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	patterns := func(n int) []string { return slices.Repeat([]string{"*/*/*/*"}, n) }
	inputs := func(n, size int) []*fractalv1.TransactionInput {
		in := &fractalv1.TransactionInput{Tx: &fractalv1.TransactionInput_TxBytes{TxBytes: make([]byte, size)}}
		return slices.Repeat([]*fractalv1.TransactionInput{in}, n)
	}
	for _, c := range []struct {
		req  proto.Message
		want string // "" when the request is within its bounds
	}{
		{&fractalv1.GetStatusRequest{}, ""},
		{&fractalv1.ListNotesRequest{Pattern: "*/*/*/*"}, ""},
		{&fractalv1.ListNotesRequest{PageSize: 100}, ""},
		{&fractalv1.ListNotesRequest{PageSize: 101}, "page_size: 101 exceeds the maximum 100"},
		{&fractalv1.ListNotesRequest{Pattern: long(8192)}, ""},
		{&fractalv1.ListNotesRequest{Pattern: long(8193)}, "pattern: 8193 bytes exceed the limit 8192"},
		{&fractalv1.ListBlocksRequest{PageToken: long(129)}, "page_token: 129 bytes exceed the limit 128"},
		{&fractalv1.GetReceiptRequest{TxId: long(65)}, "tx_id: 65 bytes exceed the limit 64"},
		{&fractalv1.SubmitTransactionRequest{Tx: &fractalv1.SubmitTransactionRequest_TxBytes{TxBytes: make([]byte, phases.MaxTxBytes)}}, ""},
		{&fractalv1.SubmitTransactionRequest{Tx: &fractalv1.SubmitTransactionRequest_TxBytes{TxBytes: make([]byte, phases.MaxTxBytes+1)}}, "tx_bytes: 1326221 bytes exceed the limit 1326220"},
		{&fractalv1.SubmitTransactionRequest{Tx: &fractalv1.SubmitTransactionRequest_TxJson{TxJson: long(phases.MaxTxJSON + 1)}}, "tx_json: 4194305 bytes exceed the limit 4194304"},
		{&fractalv1.SubmitTransactionsRequest{Transactions: inputs(256, 1)}, ""},
		{&fractalv1.SubmitTransactionsRequest{Transactions: inputs(257, 1)}, "transactions: 257 elements exceed the limit 256"},
		{&fractalv1.SubmitTransactionsRequest{Transactions: inputs(2, phases.MaxTxBytes+1)}, "transactions[0].tx_bytes: 1326221 bytes exceed the limit 1326220"},
		{&fractalv1.WatchRequest{NotePatterns: patterns(16)}, ""},
		{&fractalv1.WatchRequest{NotePatterns: patterns(17)}, "note_patterns: 17 elements exceed the limit 16"},
		{&fractalv1.WatchRequest{NotePatterns: []string{"*/*/*/*", long(8193)}}, "note_patterns[1]: 8193 bytes exceed the limit 8192"},
		{&fractalv1.CompactBlocksRequest{StartHeight: 1 << 60}, ""},
		// A message the schema left unbounded admits only empty values.
		{&fractalv1.NoteRef{Id: "x"}, "id: 1 bytes exceed the limit 0"},
		{&fractalv1.Receipt{Gas: &fractalv1.Gas{Total: 1}, Log: []string{"x"}}, "log: 1 elements exceed the limit 0"},
	} {
		err := Check(c.req)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%T: %v", c.req, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%T: got %v, want %q", c.req, err, c.want)
		}
	}
}

func TestPageSize(t *testing.T) {
	for _, c := range []struct {
		req  proto.Message
		want int
	}{
		{&fractalv1.ListNotesRequest{}, 20},
		{&fractalv1.ListNotesRequest{PageSize: 7}, 7},
		{&fractalv1.ListPeersRequest{}, 100},
		{&fractalv1.ListBlocksRequest{PageSize: 100}, 100},
		{&fractalv1.GetStatusRequest{}, 0},
	} {
		if got := PageSize(c.req); got != c.want {
			t.Errorf("%T %v: page size %d, want %d", c.req, c.req, got, c.want)
		}
	}
}
