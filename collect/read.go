// Package collect owns kairn's sources: it reads raw control-plane traffic (audit logs and
// webhook batches, Event and object watch streams) and turns it into link observations and
// object revisions. It knows nothing of Parquet or object storage.
package collect

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kairn-dev/kairn/link"
)

// Sink receives what a source reads.
type Sink interface {
	Observe(link.Observation)
	Revise(link.Revision)
	Malformed(Malformed)
}

// Malformed is one input record that could not be used, with where it was and why.
type Malformed struct {
	File   string
	Line   int
	Reason string
	Raw    []byte
}

func (m Malformed) String() string { return fmt.Sprintf("%s:%d: %s", m.File, m.Line, m.Reason) }

// Stats counts what a read produced.
type Stats struct {
	Bytes        int64 // uncompressed bytes read
	Records      int   // top-level input records (lines or values)
	Observations int
	Revisions    int
	Skipped      int // well-formed records with nothing to archive (e.g. RequestReceived stage)
	Malformed    int
}

func (s *Stats) Add(o Stats) {
	s.Bytes += o.Bytes
	s.Records += o.Records
	s.Observations += o.Observations
	s.Revisions += o.Revisions
	s.Skipped += o.Skipped
	s.Malformed += o.Malformed
}

// FileOptions configure a file read.
type FileOptions struct {
	Cluster string
	// Progress, when set, is called about once a second with compressed bytes done and total.
	Progress func(file string, done, total int64)
}

// maxValueBytes bounds one input record; the apiserver's own request limit is 3 MiB, and an
// audit record holds a request and a response body.
const maxValueBytes = 16 << 20

// ReadAuditFile reads audit.k8s.io/v1 or v1beta1 Events as JSON lines (what --audit-log-path
// writes), webhook EventList bodies, or AdmissionReview lines; plain or gzip.
func ReadAuditFile(path string, opts FileOptions, sink Sink) (Stats, error) {
	return readFile(path, opts, sink, "audit")
}

// ReadWatchFile reads the stream `kubectl get RESOURCE -A --watch --output-watch-events -o json`
// prints (for Events and for any object kind), bare objects and Lists, or multi-document YAML
// of objects; plain or gzip.
func ReadWatchFile(path string, opts FileOptions, sink Sink) (Stats, error) {
	return readFile(path, opts, sink, "watch")
}

func readFile(path string, opts FileOptions, sink Sink, kind string) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Stats{}, err
	}
	if info.IsDir() {
		return Stats{}, fmt.Errorf("%s: is a directory, want a file", path)
	}
	counted := &progressReader{r: f, total: info.Size(), file: path, report: opts.Progress}
	r, err := decompress(bufio.NewReaderSize(counted, 1<<16))
	if err != nil {
		return Stats{}, fmt.Errorf("%s: %w", path, err)
	}
	in := input{file: path, cluster: opts.Cluster, sink: sink}
	if kind == "audit" {
		return (&auditReader{in}).read(r)
	}
	return (&watchReader{in}).read(r)
}

// decompress sniffs gzip by its magic bytes.
func decompress(r *bufio.Reader) (*bufio.Reader, error) {
	magic, _ := r.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("bad gzip header: %w", err)
		}
		return bufio.NewReaderSize(zr, 1<<16), nil
	}
	return r, nil
}

// sniff returns the first non-blank bytes, to reject a wrong file type before reading it all.
func sniff(r *bufio.Reader) []byte {
	for n := 64; n <= 4096; n *= 4 {
		b, _ := r.Peek(n)
		if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 || len(b) < n {
			return t
		}
	}
	return nil
}

func wrongType(path string, head []byte, want string) error {
	switch {
	case bytes.HasPrefix(head, []byte("PAR1")):
		return fmt.Errorf("%s: is a Parquet file, %s", path, want)
	case len(head) == 0:
		return nil // empty input: nothing to read, not an error
	}
	h := string(head)
	if len(h) > 24 {
		h = h[:24]
	}
	return fmt.Errorf("%s: not a recognised input (starts with %q); %s", path, h, want)
}

const (
	wantAudit = "--audit wants JSON lines of audit.k8s.io Events, webhook EventList bodies, or AdmissionReview lines"
	wantWatch = "--watch wants the JSON stream of `kubectl get ... --watch --output-watch-events -o json`, JSON objects or Lists, or YAML objects"
)

// input is what both readers share: where they read from, what they found, where it goes.
type input struct {
	file    string
	cluster string
	sink    Sink
	stats   Stats
	intern  interner
}

func (in *input) malformed(line int, reason string, raw []byte) {
	in.stats.Malformed++
	// raw may be the splitter's buffer, valid only until the next value: the sink keeps a copy.
	in.sink.Malformed(Malformed{File: in.file, Line: line, Reason: reason, Raw: bytes.Clone(raw)})
}

// eachValue hands every well-formed top-level JSON value to fn, after wrongKind has vetted the
// first one, and reports the bad ones. fn is told whether the value is a whole line the
// splitter did not scan (valueSplitter.wholeLines, set when fn can take those): then it must
// return false, and report nothing, unless the line decoded as exactly one value.
func (in *input) eachValue(r *bufio.Reader, wrongKind func(file string, raw []byte) error, wholeLines bool, fn func(line int, raw []byte, whole bool) bool) (Stats, error) {
	s := newValueSplitter(r, maxValueBytes)
	first := true
	for {
		v, err := s.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return in.stats, fmt.Errorf("%s:%d: %w", in.file, s.line, err)
		}
		if v.Err != nil {
			in.stats.Records++
			in.malformed(v.Line, v.Err.Error(), v.Raw)
			continue
		}
		if first {
			if err := wrongKind(in.file, v.Raw); err != nil {
				in.stats.Records++
				return in.stats, err
			}
			// The first value is always scanned: wrongKind judges it as the scan cuts it.
			first, s.wholeLines = false, wholeLines
		}
		if !fn(v.Line, v.Raw, v.Whole) {
			s.resplit(v)
			continue
		}
		in.stats.Records++
	}
	in.stats.Bytes = s.consumed
	return in.stats, nil
}

// notAnAuditLog and notAWatchStream tell the two inputs apart by their first record.
func notAnAuditLog(file string, raw []byte) error {
	if looksLikeWatchEvent(raw) {
		return fmt.Errorf("%s: this is a watch stream (it has \"type\" and \"object\"), not an audit log: pass it with --watch", file)
	}
	return nil
}

func notAWatchStream(file string, raw []byte) error {
	if bytes.Contains(raw[:min(len(raw), 4096)], []byte(`"auditID"`)) {
		return fmt.Errorf("%s: this is an audit log (it has auditID), not a watch stream: pass it with --audit", file)
	}
	return nil
}

type auditReader struct{ input }

func (a *auditReader) read(r *bufio.Reader) (Stats, error) {
	head := sniff(r)
	if len(head) > 0 && head[0] != '{' && head[0] != '[' {
		return a.stats, wrongType(a.file, head, wantAudit)
	}
	return a.eachValue(r, notAnAuditLog, true, a.topValue)
}

// topValue takes one top-level value; a whole line that is not one audit Event, EventList or
// AdmissionReview in JSON is handed back (false) unreported.
func (a *auditReader) topValue(line int, raw []byte, whole bool) bool {
	if !whole {
		a.value(line, raw)
		return true
	}
	var ev auditEvent
	items, err := decodeAuditEvent(raw, &ev, &a.intern)
	if err != nil {
		return false
	}
	a.decoded(line, raw, &ev, items)
	return true
}

func (a *auditReader) value(line int, raw []byte) {
	if raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			a.malformed(line, "bad JSON array: "+err.Error(), raw)
			return
		}
		for _, it := range items {
			a.value(line, it)
		}
		return
	}
	var ev auditEvent
	items, err := decodeAuditEvent(raw, &ev, &a.intern)
	if err != nil {
		a.malformed(line, "bad audit event: "+jsonReason(err), raw)
		return
	}
	a.decoded(line, raw, &ev, items)
}

// decoded handles an audit event (or EventList, AdmissionReview) that decoded.
func (a *auditReader) decoded(line int, raw []byte, ev *auditEvent, items []byte) {
	switch {
	case ev.Kind == "EventList":
		list, err := listItems(items)
		if err != nil {
			a.malformed(line, "bad EventList: "+jsonReason(err), raw)
			return
		}
		// One bad item is quarantined alone; its neighbours in the batch are kept.
		for _, it := range list {
			a.value(line, it)
		}
		return
	case ev.Kind == "AdmissionReview":
		var ar admissionReview
		if err := json.Unmarshal(raw, &ar); err != nil {
			a.malformed(line, "bad AdmissionReview: "+jsonReason(err), raw)
			return
		}
		if ar.Request != nil && ar.Request.Object != nil && str(ar.Request.Object["kind"]) == "Event" {
			if obs, ok := eventObservation(a.cluster, ar.Request.Object); ok {
				a.observe(obs)
			}
		}
		f, err := admissionFacts(a.cluster, &ar)
		a.emit(line, raw, f, err)
		return
	case ev.Kind != "" && ev.Kind != "Event":
		a.malformed(line, fmt.Sprintf("unexpected kind %q (want an audit Event, EventList or AdmissionReview)", ev.Kind), raw)
		return
	}
	f, err := auditFacts(a.cluster, ev)
	a.emit(line, raw, f, err)
}

func (a *auditReader) emit(line int, raw []byte, f facts, err error) {
	switch {
	case errors.Is(err, errSkip):
		a.stats.Skipped++
	case err != nil:
		a.malformed(line, err.Error(), raw)
	default:
		a.observe(f.obs)
		if f.event != nil {
			a.observe(*f.event)
		}
		if f.rev != nil {
			a.stats.Revisions++
			a.sink.Revise(*f.rev)
		}
	}
}

func (a *auditReader) observe(obs link.Observation) {
	a.stats.Observations++
	a.sink.Observe(obs)
}

func looksLikeWatchEvent(raw []byte) bool {
	var probe struct {
		Type   string          `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	return json.Unmarshal(raw, &probe) == nil && probe.Type != "" && len(probe.Object) > 0
}

// jsonReason shortens encoding/json's errors to what a user can act on.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has a JSON %s, want %s", te.Field, te.Value, te.Type)
	}
	return err.Error()
}

type watchReader struct{ input }

func (w *watchReader) read(r *bufio.Reader) (Stats, error) {
	head := sniff(r)
	if len(head) == 0 {
		return w.stats, nil
	}
	if head[0] != '{' && head[0] != '[' {
		if head[0] == '#' || bytes.HasPrefix(head, []byte("---")) || bytes.HasPrefix(head, []byte("apiVersion:")) || bytes.HasPrefix(head, []byte("kind:")) {
			return w.readYAML(r)
		}
		return w.stats, wrongType(w.file, head, wantWatch)
	}
	return w.eachValue(r, notAWatchStream, false, func(line int, raw []byte, _ bool) bool {
		w.value(line, raw, time.Time{})
		return true
	})
}

func (w *watchReader) value(line int, raw []byte, observed time.Time) {
	body, err := decodeBody(raw)
	if err != nil {
		if raw[0] == '[' {
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err == nil {
				for _, it := range items {
					w.value(line, it, observed)
				}
				return
			}
		}
		w.malformed(line, "bad JSON: "+jsonReason(err), raw)
		return
	}
	typ := ""
	if t, ok := body["type"].(string); ok {
		if obj, ok := body["object"].(map[string]any); ok {
			typ, body = t, obj
		}
	}
	switch typ {
	case "BOOKMARK":
		w.stats.Skipped++
		return
	case "ERROR":
		w.malformed(line, "watch ERROR: "+str(body["message"]), raw)
		return
	}
	if items, ok := body["items"].([]any); ok && strings.HasSuffix(str(body["kind"]), "List") {
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				w.object(line, raw, m, "", observed)
			}
		}
		return
	}
	w.object(line, raw, body, typ, observed)
}

func (w *watchReader) object(line int, raw []byte, body map[string]any, typ string, observed time.Time) {
	kind := str(body["kind"])
	if kind == "Event" {
		if obs, ok := eventObservation(w.cluster, body); ok {
			if obs.Time.IsZero() {
				obs.Time, obs.TimeSource = observed, "observed"
			}
			if obs.Time.IsZero() {
				w.malformed(line, "Event without any timestamp", raw)
				return
			}
			w.stats.Observations++
			w.sink.Observe(obs)
			return
		}
		w.malformed(line, "Event without involvedObject/regarding", raw)
		return
	}
	rev, err := revisionFromBody(w.cluster, body, "watch")
	if err != nil {
		w.malformed(line, err.Error(), raw)
		return
	}
	rev.Deleted = typ == "DELETED"
	rev.Observed = observed
	w.stats.Revisions++
	w.sink.Revise(rev)
}

// readYAML reads multi-document YAML. A comment line `# {"time": "..."}` before a document (as
// kspan's recorder writes) is taken as the time the object was observed.
func (w *watchReader) readYAML(r *bufio.Reader) (Stats, error) {
	var (
		doc      bytes.Buffer
		docLine  = 1
		lineNo   = 0
		observed time.Time
	)
	flush := func() {
		if len(bytes.TrimSpace(doc.Bytes())) == 0 {
			doc.Reset()
			return
		}
		w.stats.Records++
		raw, err := yaml.YAMLToJSON(doc.Bytes())
		if err != nil {
			w.malformed(docLine, "bad YAML: "+err.Error(), bytes.Clone(doc.Bytes()))
		} else if !bytes.Equal(raw, []byte("null")) {
			w.value(docLine, raw, observed)
		}
		doc.Reset()
		observed = time.Time{}
	}
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			w.stats.Bytes += int64(len(line))
			t := bytes.TrimSpace(line)
			switch {
			case bytes.Equal(t, []byte("---")):
				flush()
				docLine = lineNo + 1
			case bytes.HasPrefix(t, []byte("# {")):
				var meta struct {
					Time time.Time `json:"time"`
				}
				if json.Unmarshal(t[2:], &meta) == nil {
					observed = meta.Time.UTC()
				}
			default:
				doc.Write(line)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return w.stats, fmt.Errorf("%s:%d: %w", w.file, lineNo, err)
		}
	}
	flush()
	return w.stats, nil
}

// progressReader counts compressed bytes and reports progress about once a second.
type progressReader struct {
	r      io.Reader
	file   string
	done   int64
	total  int64
	last   time.Time
	report func(file string, done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.report != nil && (err == io.EOF || time.Since(p.last) > time.Second) {
		p.last = time.Now()
		p.report(p.file, p.done, p.total)
	}
	return n, err
}

// CheckAuditFile and CheckWatchFile look at the start of a file and fail with a clear error when
// it is the wrong kind of input, so a long ingest does not start on a mistake.
func CheckAuditFile(path string) error { return checkFile(path, "audit") }
func CheckWatchFile(path string) error { return checkFile(path, "watch") }

func checkFile(path, kind string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return fmt.Errorf("%s: is a directory, want a file", path)
	}
	r, err := decompress(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	head := sniff(r)
	if len(head) == 0 {
		return nil
	}
	if head[0] != '{' && head[0] != '[' {
		if kind == "watch" && (head[0] == '#' || bytes.HasPrefix(head, []byte("---")) || bytes.HasPrefix(head, []byte("apiVersion:")) || bytes.HasPrefix(head, []byte("kind:"))) {
			return nil
		}
		want := wantAudit
		if kind == "watch" {
			want = wantWatch
		}
		return wrongType(path, head, want)
	}
	v, err := newValueSplitter(r, maxValueBytes).next()
	if err != nil || v.Err != nil {
		return nil // the read reports bad values one by one
	}
	if kind == "audit" {
		return notAnAuditLog(path, v.Raw)
	}
	return notAWatchStream(path, v.Raw)
}
