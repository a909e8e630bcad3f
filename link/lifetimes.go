package link

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// lifetimes tell apart the objects one name has had (a StatefulSet's pod deleted and created
// again), so a record that names an object without its uid goes to the one it is about. An
// object lives from its birth, the time the apiserver received its create where that record is
// known (precise), else its creationTimestamp (seconds), until the next object of its name is
// born: a write is about the object alive when it was received, a create about the object it
// created.
type lifetimes map[ObjectKey][]*incarnation // by NameKey, in order of creation

type incarnation struct {
	uid     string
	created time.Time // creationTimestamp, seconds; zero when unknown
	firstRV string    // the oldest revision seen, which orders creations of one second
	born    time.Time // the received time of its create, once known
	claimed bool      // a create record has been given this object
}

func (l lifetimes) add(k ObjectKey, created time.Time, firstRV string) {
	nk := k.NameKey()
	for _, c := range l[nk] {
		if c.uid == k.UID {
			if !created.IsZero() && (c.created.IsZero() || created.Before(c.created)) {
				c.created = created
			}
			if firstRV != "" && (c.firstRV == "" || RVLess(firstRV, c.firstRV)) {
				c.firstRV = firstRV
			}
			return
		}
	}
	l[nk] = append(l[nk], &incarnation{uid: k.UID, created: created, firstRV: firstRV})
}

// sort orders each name's objects by creation, once they are all added.
func (l lifetimes) sort() {
	for _, list := range l {
		slices.SortFunc(list, func(a, b *incarnation) int {
			return cmp.Or(a.created.Compare(b.created), compareRV(a.firstRV, b.firstRV), strings.Compare(a.uid, b.uid))
		})
	}
}

// bornBy records that a create received at t, known to be of the object uid, started its life.
func (l lifetimes) bornBy(k ObjectKey, t time.Time) {
	for _, c := range l[k.NameKey()] {
		if c.uid == k.UID {
			c.claimed = true
			if c.born.IsZero() || t.Before(c.born) {
				c.born = t
			}
		}
	}
}

// creator returns the uid of the object a create of that name, received at t and answered at
// end, created: the first one not yet given its create whose creationTimestamp falls within the
// request ("" when none does).
func (l lifetimes) creator(k ObjectKey, t, end time.Time) string {
	for _, c := range l[k.NameKey()] {
		if c.claimed || c.created.IsZero() || c.created.Before(t.Truncate(time.Second)) || c.created.After(end) {
			continue
		}
		c.claimed, c.born = true, t
		return c.uid
	}
	return ""
}

// alive returns the uid of the object of that name alive at t: the last one born by then (the
// first one, for a record older than them all).
func (l lifetimes) alive(k ObjectKey, t time.Time) string {
	list := l[k.NameKey()]
	pick := ""
	var pickBorn time.Time
	for _, c := range list {
		born := c.born
		if born.IsZero() {
			born = c.created
		}
		if born.After(t) {
			continue
		}
		if pick == "" || !born.Before(pickBorn) {
			pick, pickBorn = c.uid, born
		}
	}
	if pick == "" && len(list) > 0 {
		pick = list[0].uid
	}
	return pick
}

// resolve gives each record that names an object without its uid (index i of n, through key
// and set) the uid by lifetime: creates first, in time order, so the objects they created are
// born at their precise time before any other record is placed.
func (l lifetimes) resolve(n int, rec func(i int) (k ObjectKey, verb string, t, end time.Time, id string), set func(i int, uid string)) {
	var creates, rest []int
	for i := range n {
		k, verb, _, _, _ := rec(i)
		if k.UID != "" || k.Name == "" {
			continue
		}
		if verb == "create" {
			creates = append(creates, i)
		} else {
			rest = append(rest, i)
		}
	}
	slices.SortFunc(creates, func(x, y int) int {
		_, _, tx, _, idx := rec(x)
		_, _, ty, _, idy := rec(y)
		return cmp.Or(tx.Compare(ty), strings.Compare(idx, idy))
	})
	for _, i := range creates {
		k, _, t, end, _ := rec(i)
		uid := l.creator(k, t, end)
		if uid == "" {
			uid = l.alive(k, t)
		}
		if uid != "" {
			set(i, uid)
		}
	}
	for _, i := range rest {
		k, _, t, _, _ := rec(i)
		if uid := l.alive(k, t); uid != "" {
			set(i, uid)
		}
	}
}
