package link

import (
	"encoding/json"
	"fmt"
	"time"
)

// Record is one fact as it is spooled between collection and linking: an observation or a
// revision. The encoding is JSON: the spool is read once per window, and JSON keeps a spool
// inspectable with standard tools.
type Record struct {
	Observation *Observation `json:"o,omitempty"`
	Revision    *Revision    `json:"r,omitempty"`
}

// Time is when the fact happened, as well as it is known: what decides its window.
func (r Record) Time() time.Time {
	switch {
	case r.Observation != nil:
		return r.Observation.Time
	case r.Revision != nil:
		v := r.Revision
		t, _ := bestTime(sourced{v.Observed, ""}, sourced{v.ManagerTime, ""}, sourced{v.DeletionTime, ""}, sourced{v.Created, ""})
		return t
	}
	return time.Time{}
}

// EncodeRecord and DecodeRecord are the spool encoding.
func EncodeRecord(r Record) ([]byte, error) { return json.Marshal(r) }

func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("spooled record: %w", err)
	}
	if (r.Observation == nil) == (r.Revision == nil) {
		return r, fmt.Errorf("spooled record holds %s", "neither or both of an observation and a revision")
	}
	return r, nil
}

// Add hands a decoded record to the batch.
func (b *Batch) Add(r Record) {
	if r.Observation != nil {
		b.Observe(*r.Observation)
	} else if r.Revision != nil {
		b.Revise(*r.Revision)
	}
}
