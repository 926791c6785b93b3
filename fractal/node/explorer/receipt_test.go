package explorer

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// TestReceiptShowsFeeAndLabels: a receipt's fee (amount, gas × price, the
// fee note, change and payment) and its outputs' labels are on the page,
// each label beside its own output.
func TestReceiptShowsFeeAndLabels(t *testing.T) {
	key := func(s string) notes.StateKey {
		k, err := notes.ParseStateKey("/" + wire.Hex([32]byte{1}) + "/" + wire.Hex([32]byte{2}) + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rc := &phases.Receipt{
		TxID: [32]byte{9}, Status: phases.Accepted, Gas: phases.Gas{Calculation: 4, Validity: 2},
		Outputs: []phases.NoteRef{{ID: [32]byte{5}, Key: key("6f31")}, {ID: [32]byte{6}, Key: key("6f32")}},
		Fee: &phases.FeePaid{Price: 3, Gas: 6, Amount: 18, Note: phases.NoteRef{ID: [32]byte{7}, Key: key("6665")},
			Paid: phases.NoteRef{ID: [32]byte{8}, Key: key("706169")}, Change: &phases.NoteRef{ID: [32]byte{10}, Key: key("6368")}},
		Labels: []phases.OutputLabel{{Output: 2, Label: "item"}},
	}
	e := New(nil, slog.New(slog.DiscardHandler))
	var buf bytes.Buffer
	if err := e.pages["tx"].ExecuteTemplate(&buf, "receipt", wire.Receipt(rc)); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		`<td id="fee">18 (gas 6 × price 3) from <a class="id" href="/note?key=`,
		`">` + key("6665").String() + `</a><div>change <a class="id" href="/note?key=`,
		`">` + key("6368").String() + `</a></div><div>paid <a class="id" href="/note?key=`,
		`">` + key("706169").String() + `</a></div></td>`,
		`">` + key("6f31").String() + `</a></div>`,
		`">` + key("6f32").String() + `</a> <span class="label">label item</span></div>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the receipt lacks %q:\n%s", want, page)
		}
	}
	rc.Fee, rc.Labels = nil, nil
	buf.Reset()
	if err := e.pages["tx"].ExecuteTemplate(&buf, "receipt", wire.Receipt(rc)); err != nil || strings.Contains(buf.String(), "fee") || strings.Contains(buf.String(), "label") {
		t.Fatalf("a receipt without fee or labels: %v\n%s", err, buf.String())
	}
}
