package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler serves Jaeger's HTTP JSON API (the one jaeger-query serves to its UI), so curl and
// Grafana's Jaeger data source work without jaeger-query:
//
//	GET /api/services
//	GET /api/services/{service}/operations
//	GET /api/operations?service=…
//	GET /api/traces?service=…&operation=…&tag=k:v&tags={"k":"v"}&start=µs&end=µs&limit=n
//	GET /api/traces/{id}
//	GET /api/dependencies
//
// Answers have Jaeger's envelope {"data","total","limit","offset","errors"}; errors are
// {"code","msg"} with the HTTP status (400 for a bad request).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/services", func(w http.ResponseWriter, r *http.Request) {
		svcs := s.Services()
		writeData(w, svcs, len(svcs))
	})
	mux.HandleFunc("GET /api/services/{service}/operations", func(w http.ResponseWriter, r *http.Request) {
		ops, err := s.Operations(r.Context(), r.PathValue("service"))
		if err != nil {
			writeError(w, err)
			return
		}
		if ops == nil {
			ops = []string{}
		}
		writeData(w, ops, len(ops))
	})
	mux.HandleFunc("GET /api/operations", func(w http.ResponseWriter, r *http.Request) {
		ops, err := s.Operations(r.Context(), r.FormValue("service"))
		if err != nil {
			writeError(w, err)
			return
		}
		type op struct {
			Name     string `json:"name"`
			SpanKind string `json:"spanKind"`
		}
		out := []op{}
		for _, o := range ops {
			out = append(out, op{Name: o})
		}
		writeData(w, out, len(out))
	})
	mux.HandleFunc("GET /api/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := ParseTraceID(r.PathValue("id"))
		if err != nil {
			writeError(w, badRequest(err))
			return
		}
		t, err := s.GetTrace(r.Context(), id)
		if err != nil {
			writeError(w, err)
			return
		}
		writeData(w, []UITrace{ToUI(t)}, 1)
	})
	mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, r *http.Request) {
		q, err := httpQuery(r)
		if err != nil {
			writeError(w, badRequest(err))
			return
		}
		traces, err := s.FindTraces(r.Context(), q)
		if err != nil {
			writeError(w, err)
			return
		}
		out := []UITrace{}
		for _, t := range traces {
			out = append(out, ToUI(t))
		}
		writeData(w, out, len(out))
	})
	mux.HandleFunc("GET /api/dependencies", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, []any{}, 0)
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, envelope{Errors: []apiError{{Code: http.StatusNotFound, Msg: "no such API: " + r.Method + " " + r.URL.Path}}})
	})
	return mux
}

type envelope struct {
	Data   any        `json:"data"`
	Total  int        `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
	Errors []apiError `json:"errors"`
}

type apiError struct {
	Code int    `json:"code,omitempty"`
	Msg  string `json:"msg"`
}

func writeData(w http.ResponseWriter, data any, total int) {
	writeJSON(w, http.StatusOK, envelope{Data: data, Total: total})
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrBadTraceID):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	writeJSON(w, code, envelope{Errors: []apiError{{Code: code, Msg: err.Error()}}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// httpQuery parses /api/traces parameters the way jaeger-query does: start and end in µs since
// the epoch, tag=k:v (repeatable) and tags={json}.
func httpQuery(r *http.Request) (Query, error) {
	if err := r.ParseForm(); err != nil {
		return Query{}, err
	}
	p, err := ParsePipeline(r.FormValue("service"))
	if err != nil {
		return Query{}, err
	}
	q := Query{Pipeline: p, Cluster: r.FormValue("operation"), Tags: map[string]string{}}
	if q.Cluster == "all" {
		q.Cluster = ""
	}
	for _, kv := range r.Form["tag"] {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return Query{}, fmt.Errorf("tag %q: write key:value", kv)
		}
		q.Tags[k] = v
	}
	for _, js := range r.Form["tags"] {
		var m map[string]string
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			return Query{}, fmt.Errorf("tags %q: want a JSON object of strings: %v", truncate(js, 60), err)
		}
		for k, v := range m {
			q.Tags[k] = v
		}
	}
	if err := CheckTags(q.Tags); err != nil {
		return Query{}, err
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"start", &q.Start}, {"end", &q.End}} {
		if v := r.FormValue(f.name); v != "" {
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Query{}, fmt.Errorf("%s %q: want microseconds since the epoch", f.name, truncate(v, 40))
			}
			*f.dst = time.UnixMicro(us).UTC()
		}
	}
	if v := r.FormValue("lookback"); v != "" && q.Start.IsZero() && v != "custom" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Query{}, fmt.Errorf("lookback %q: want a duration such as 1h", truncate(v, 40))
		}
		end := q.End
		if end.IsZero() {
			end = time.Now()
		}
		q.Start = end.Add(-d)
	}
	if v := r.FormValue("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Query{}, fmt.Errorf("limit %q: want a number", truncate(v, 40))
		}
		q.Limit = n
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return Query{}, fmt.Errorf("end is before start")
	}
	return q, nil
}
