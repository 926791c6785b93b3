package phases

import (
	"errors"
	"sort"
	"sync"

	"github.com/fractalvm/fractal/notes"
)

// overlay is a State made of a base state and the effects of transactions
// accepted earlier in the block. It is safe for concurrent use: transactions
// that run at the same time do not conflict, so none of them can see the
// keys another one changes.
type overlay struct {
	base State
	mu   sync.RWMutex
	live map[string]change   // by state key text
	imp  map[notes.Hash]bool // exports imported earlier in the block
}

// change is the overlay's version of one state key.
type change struct {
	key  notes.StateKey
	text string
	note *notes.Note // the note created there, or nil for a note spent
}

func newOverlay(base State) *overlay {
	return &overlay{base: base, live: make(map[string]change), imp: make(map[notes.Hash]bool)}
}

// apply records a committed outcome's effects (Outcome.Effects).
func (o *overlay) apply(out *Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out.Effects(func(n *notes.Note, created bool) {
		k := n.StateKey()
		c := change{key: k, text: k.String()}
		if created {
			c.note = n
		}
		o.live[c.text] = c
	})
	if out.Import != nil {
		o.imp[out.Import.ExportID] = true
	}
}

// Labels implements LabelIndex over the base's index: follow knows only
// transactions of earlier blocks, so the block's own outcomes add nothing.
func (o *overlay) Labels(txid notes.Hash) ([]Labelled, error) {
	idx, ok := o.base.(LabelIndex)
	if !ok {
		return nil, errors.New("phases: follow: the state keeps no label index")
	}
	return idx.Labels(txid)
}

// Imported implements ImportIndex over the base's index.
func (o *overlay) Imported(id notes.Hash) (bool, error) {
	o.mu.RLock()
	done := o.imp[id]
	o.mu.RUnlock()
	if done {
		return true, nil
	}
	idx, ok := o.base.(ImportIndex)
	if !ok {
		return false, errors.New("phases: import: the state keeps no import index")
	}
	return idx.Imported(id)
}

func (o *overlay) Get(k notes.StateKey) (*notes.Note, error) {
	var buf [256]byte // most keys' text: looked up without a string of its own
	o.mu.RLock()
	c, changed := o.live[string(k.AppendText(buf[:0]))]
	o.mu.RUnlock()
	if changed {
		return c.note, nil
	}
	return o.base.Get(k)
}

// Scan merges the base scan with the overlay's changes under p, keeping
// state-key order.
func (o *overlay) Scan(p notes.Pattern, fn func(*notes.Note) error) error {
	var changes []change
	o.mu.RLock()
	for _, c := range o.live {
		if p.Match(c.key) {
			changes = append(changes, c)
		}
	}
	o.mu.RUnlock()
	sort.Slice(changes, func(i, j int) bool { return changes[i].text < changes[j].text })
	i := 0
	// emitWhile emits the changes while before(key) holds; a spent note
	// emits nothing.
	emitWhile := func(before func(key string) bool) error {
		for ; i < len(changes) && before(changes[i].text); i++ {
			if changes[i].note != nil {
				if err := fn(changes[i].note); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := o.base.Scan(p, func(n *notes.Note) error {
		key := n.StateKey().String()
		if err := emitWhile(func(k string) bool { return k < key }); err != nil {
			return err
		}
		if i < len(changes) && changes[i].text == key {
			// Replaced or spent: the overlay's version wins.
			return emitWhile(func(k string) bool { return k == key })
		}
		return fn(n)
	})
	if err != nil {
		return err
	}
	return emitWhile(func(string) bool { return true })
}
