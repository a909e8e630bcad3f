package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/kairn-dev/kairn/archive"
)

// readTraceRows decodes only the rows of a part whose trace_id is in traces. It scans the
// dictionary-encoded trace_id column first, then decodes just the matching runs of rows: parts
// are sorted by object, so a trace's rows are a few runs, and the other objects of the window
// are never decoded into structs.
func readTraceRows(key string, data []byte, traces map[string]bool) ([]archive.Span, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	leaf, ok := f.Schema().Lookup("trace_id")
	if !ok {
		return nil, fmt.Errorf("read %s: no trace_id column", key)
	}
	var out []archive.Span
	values := make([]parquet.Value, 1024)
	for _, rg := range f.RowGroups() {
		// Runs [start, end) of matching rows in this row group.
		var runs [][2]int64
		row := int64(0)
		pages := rg.ColumnChunks()[leaf.ColumnIndex].Pages()
		for {
			page, err := pages.ReadPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				pages.Close()
				return nil, fmt.Errorf("read %s: trace_id: %w", key, err)
			}
			vr := page.Values()
			for {
				n, err := vr.ReadValues(values)
				for _, v := range values[:n] {
					if traces[string(v.ByteArray())] {
						if len(runs) > 0 && runs[len(runs)-1][1] == row {
							runs[len(runs)-1][1]++
						} else {
							runs = append(runs, [2]int64{row, row + 1})
						}
					}
					row++
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					parquet.Release(page)
					pages.Close()
					return nil, fmt.Errorf("read %s: trace_id: %w", key, err)
				}
			}
			parquet.Release(page)
		}
		pages.Close()
		if len(runs) == 0 {
			continue
		}
		r := parquet.NewGenericRowGroupReader[archive.Span](rg)
		for _, run := range runs {
			if err := r.SeekToRow(run[0]); err != nil {
				r.Close()
				return nil, fmt.Errorf("read %s: %w", key, err)
			}
			buf := make([]archive.Span, run[1]-run[0])
			for got := 0; got < len(buf); {
				n, err := r.Read(buf[got:])
				got += n
				if err != nil && (!errors.Is(err, io.EOF) || got < len(buf)) {
					r.Close()
					return nil, fmt.Errorf("read %s: rows %d..%d: %w", key, run[0], run[1], err)
				}
			}
			out = append(out, buf...)
		}
		r.Close()
	}
	return out, nil
}
