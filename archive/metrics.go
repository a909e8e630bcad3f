package archive

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// InstrumentStore wraps s so that every operation is counted and timed:
//
//	kairn_object_store_requests_total{op}            Put, Get, List, Delete calls
//	kairn_object_store_errors_total{op}              of those, the ones that failed (not-found Gets excluded)
//	kairn_object_store_request_duration_seconds{op}  how long they took
func InstrumentStore(s Store, reg prometheus.Registerer) (Store, error) {
	m := &instrumentedStore{Store: s,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_object_store_requests_total",
			Help: "Object store operations, by op."}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_object_store_errors_total",
			Help: "Object store operations that failed, by op (a Get of a missing key is not an error)."}, []string{"op"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kairn_object_store_request_duration_seconds",
			Help: "Object store operation latency, by op.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"op"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type instrumentedStore struct {
	Store
	requests, errors *prometheus.CounterVec
	duration         *prometheus.HistogramVec
}

func (m *instrumentedStore) observe(op string, start time.Time, err error) {
	m.requests.WithLabelValues(op).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, ErrNotExist) {
		m.errors.WithLabelValues(op).Inc()
	}
}

func (m *instrumentedStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	start := time.Now()
	err := m.Store.Put(ctx, key, r, size)
	m.observe("put", start, err)
	return err
}

func (m *instrumentedStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := m.Store.Get(ctx, key)
	m.observe("get", start, err)
	return rc, err
}

func (m *instrumentedStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	start := time.Now()
	objs, err := m.Store.List(ctx, prefix)
	m.observe("list", start, err)
	return objs, err
}

func (m *instrumentedStore) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := m.Store.Delete(ctx, key)
	m.observe("delete", start, err)
	return err
}
