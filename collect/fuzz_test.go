package collect

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func readAudit(data []byte) (*recorder, Stats, error) {
	rec := &recorder{}
	st, err := (&auditReader{input{file: "fuzz", cluster: "c", sink: rec}}).read(bufio.NewReader(bytes.NewReader(data)))
	return rec, st, err
}

func readWatch(data []byte) (*recorder, Stats, error) {
	rec := &recorder{}
	st, err := (&watchReader{input{file: "fuzz", cluster: "c", sink: rec}}).read(bufio.NewReader(bytes.NewReader(data)))
	return rec, st, err
}

// FuzzAuditDecoder: any bytes before a good record never take that record down, and bad input
// is reported with a line and a reason, never a panic.
func FuzzAuditDecoder(f *testing.F) {
	f.Add([]byte(goodAudit))
	f.Add([]byte(`{"kind":"EventList","items":[` + goodAudit + `]}`))
	f.Add([]byte(`{"kind":"AdmissionReview","request":{"uid":"u","name":"n","object":{"kind":"Event","apiVersion":"v1","metadata":{"name":"e","creationTimestamp":"2020-01-01T00:00:00Z"},"involvedObject":{"kind":"Pod","name":"p"}}}}`))
	f.Add([]byte(`{"kind":"Event","auditID":"x","verb":"update","objectRef":{"resource":"pods","name":"p"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","uid":"u","resourceVersion":"5"}}}`))
	f.Add([]byte("[{\"a\":\"\\\"}\"}]\n{"))
	f.Fuzz(func(t *testing.T, junk []byte) {
		rec, st, err := readAudit(junk)
		if err != nil {
			return // only I/O errors end a read; bytes.Reader has none but a rejected file type
		}
		for _, m := range rec.bad {
			if m.Line < 1 || m.Reason == "" {
				t.Fatalf("malformed without line or reason: %+v", m)
			}
		}
		if st.Malformed != len(rec.bad) {
			t.Fatalf("stats say %d malformed, sink got %d", st.Malformed, len(rec.bad))
		}
		// The same junk on one line, followed by a good record, keeps the good record.
		line := bytes.ReplaceAll(bytes.ReplaceAll(junk, []byte("\n"), []byte(" ")), []byte("\r"), []byte(" "))
		if len(bytes.TrimSpace(line)) == 0 || (line[0] != '{' && line[0] != '[' && line[0] != ' ') {
			return // a non-JSON first byte is a wrong file type, rejected as a whole
		}
		data := append(append(line, '\n'), goodAudit+"\n"...)
		rec, _, err = readAudit(data)
		if err != nil {
			if strings.Contains(err.Error(), "watch stream") {
				return
			}
			t.Fatalf("read: %v", err)
		}
		if len(rec.obs) == 0 || rec.obs[len(rec.obs)-1].AuditID != "a1" {
			t.Fatalf("good record after %q lost; observations %d, malformed %v", line, len(rec.obs), rec.bad)
		}
	})
}

// FuzzWatchDecoder: no input panics the watch decoder, and a good value after junk survives.
func FuzzWatchDecoder(f *testing.F) {
	good := `{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"n","uid":"u","resourceVersion":"1"}}}`
	f.Add([]byte(good))
	f.Add([]byte("{\n  \"type\": \"DELETED\",\n  \"object\": {\"kind\": \"Event\", \"apiVersion\": \"v1\", \"metadata\": {\"name\": \"e\"}, \"involvedObject\": {\"kind\": \"Pod\", \"name\": \"p\"}, \"firstTimestamp\": \"2020-01-01T00:00:00Z\"}\n}\n"))
	f.Add([]byte("# {\"time\":\"2021-05-19T09:42:58Z\"}\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  uid: u\n---\nkind: [\n"))
	f.Add([]byte(`{"kind":"List","items":[{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"}}]}`))
	f.Fuzz(func(t *testing.T, junk []byte) {
		rec, st, err := readWatch(junk)
		if err != nil {
			return
		}
		if st.Malformed != len(rec.bad) {
			t.Fatalf("stats say %d malformed, sink got %d", st.Malformed, len(rec.bad))
		}
		line := bytes.ReplaceAll(bytes.ReplaceAll(junk, []byte("\n"), []byte(" ")), []byte("\r"), []byte(" "))
		if len(bytes.TrimSpace(line)) == 0 || line[0] != '{' {
			return
		}
		rec, _, err = readWatch(append(append(line, '\n'), good+"\n"...))
		if err != nil {
			if strings.Contains(err.Error(), "audit log") {
				return
			}
			t.Fatalf("read: %v", err)
		}
		if len(rec.revs) == 0 || rec.revs[len(rec.revs)-1].Object.UID != "u" {
			t.Fatalf("good value after %q lost; malformed %v", line, rec.bad)
		}
	})
}

// FuzzAuditWholeLines: the JSON-lines fast path (a line taken whole, scanned only if it does not
// decode) gives exactly what scanning every value gives: the same observations, revisions,
// quarantined records (line, reason, bytes) and stats.
func FuzzAuditWholeLines(f *testing.F) {
	f.Add([]byte(goodAudit + "\n" + goodAudit + "\n"))
	f.Add([]byte(goodAudit + "\n" + goodAudit + " " + goodAudit + "\n{\"a\":\"b}\n" + goodAudit))
	f.Add([]byte(goodAudit + "\n{\"kind\":\"Event\",\"verb\":1}\n{\"kind\":\"EventList\",\"items\":[" + goodAudit + ",{]}\n{\"a\":\"\\\"}\"}\n"))
	f.Add([]byte(goodAudit + "\n{\n" + goodAudit + "\n  {\"x\":1}\n}\r\n\t" + goodAudit + "  \r\n{}\n{\"kind\":\"Pod\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(whole bool) (*recorder, Stats, error) {
			rec := &recorder{}
			a := &auditReader{input{file: "fuzz", cluster: "c", sink: rec}}
			st, err := a.eachValue(bufio.NewReader(bytes.NewReader(data)), notAnAuditLog, whole, a.topValue)
			return rec, st, err
		}
		fast, fst, ferr := read(true)
		slow, sst, serr := read(false)
		if fmt.Sprint(ferr) != fmt.Sprint(serr) || fst != sst {
			t.Fatalf("whole lines: %+v, %v; scanned: %+v, %v", fst, ferr, sst, serr)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("whole lines:\n%+v\nscanned:\n%+v", fast, slow)
		}
	})
}
