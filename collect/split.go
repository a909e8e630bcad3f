package collect

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// valueSplitter cuts a byte stream into top-level JSON values without decoding them, so one bad
// value is reported on its own and never takes its neighbours down. It understands JSON lines,
// concatenated pretty-printed values (kubectl --watch -o json), and single-object files.
//
// A value that is still open when a new line starts with '{' at column 0 is taken to be
// truncated: pretty-printers indent nested values, and JSON-lines writers start every value at
// column 0, so this resynchronises after a cut-off line in either format.
//
// With wholeLines set, a line that starts with '{' and ends with '}' is handed out whole without
// scanning it (the JSON-lines fast path: scanning every byte cost as much as decoding). It is
// marked Whole, and the consumer either takes it (it decoded as exactly one value, which is what
// the scan would have cut) or hands it back with resplit, which scans it as usual.
type valueSplitter struct {
	r          *bufio.Reader
	wholeLines bool
	line       int   // 1-based line of the next byte
	consumed   int64 // bytes read so far
	maxValue   int
	pending    []byte // a line that started a new value while the previous one was open
	pendLine   int
}

// splitValue is one raw top-level value with the line it started on; Err is set when the bytes
// are not a complete value. Raw may point into the reader's buffer: it is valid until the next
// call of next, and a value kept longer must be copied.
type splitValue struct {
	Raw   []byte
	Line  int
	Err   error
	Whole bool   // a whole line, not scanned (see wholeLines)
	line  []byte // with Whole: the line as read, for resplit
}

func newValueSplitter(r io.Reader, maxValue int) *valueSplitter {
	return &valueSplitter{r: bufio.NewReaderSize(r, 1<<20), line: 1, maxValue: maxValue}
}

// next returns the next value, or io.EOF.
func (s *valueSplitter) next() (splitValue, error) {
	var (
		buf      []byte
		start    int
		depth    int
		inString bool
		escaped  bool
		started  bool
	)
	for {
		var lineBytes []byte
		var lineNo int
		if s.pending != nil {
			lineBytes, lineNo, s.pending = s.pending, s.pendLine, nil
		} else {
			b, err := s.r.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				// A very long line: gather it whole.
				full := append([]byte(nil), b...)
				for errors.Is(err, bufio.ErrBufferFull) {
					b, err = s.r.ReadSlice('\n')
					full = append(full, b...)
				}
				b = full
			}
			if len(b) == 0 && err != nil {
				if started {
					return splitValue{Raw: buf, Line: start, Err: errors.New("unexpected end of file inside a JSON value")}, nil
				}
				if err == io.EOF {
					return splitValue{}, io.EOF
				}
				return splitValue{}, err
			}
			s.consumed += int64(len(b))
			lineBytes, lineNo = b, s.line
			s.line++
			if !started && s.wholeLines && (s.maxValue <= 0 || len(b) <= s.maxValue) {
				if v := bytes.TrimFunc(b, isSpaceRune); len(v) > 1 && v[0] == '{' && v[len(v)-1] == '}' {
					return splitValue{Raw: v, Line: lineNo, Whole: true, line: b}, nil
				}
			}
		}
		i := 0
		if !started {
			// Skip blank space between values; anything else that is not '{' or '[' is junk
			// up to the end of the line.
			for i < len(lineBytes) && isSpace(lineBytes[i]) {
				i++
			}
			if i == len(lineBytes) {
				continue
			}
			if c := lineBytes[i]; c != '{' && c != '[' {
				return splitValue{Raw: bytes.TrimSpace(lineBytes), Line: lineNo, Err: fmt.Errorf("not a JSON object (starts with %q)", printable(c))}, nil
			}
			started, start = true, lineNo
		} else if len(lineBytes) > 0 && lineBytes[0] == '{' && depth > 0 && !inString {
			s.pending, s.pendLine = append([]byte(nil), lineBytes...), lineNo
			return splitValue{Raw: buf, Line: start, Err: errors.New("truncated JSON value (a new value starts before it closes)")}, nil
		}
		from := i
		for i < len(lineBytes) {
			if inString {
				if escaped {
					if lineBytes[i] == '\n' {
						return splitValue{Raw: append(buf, lineBytes[from:i]...), Line: start, Err: errors.New("line ends inside a JSON string (truncated record?)")}, nil
					}
					escaped = false
					i++
					continue
				}
				for i < len(lineBytes) && !inStringStop[lineBytes[i]] {
					i++
				}
				if i == len(lineBytes) {
					break
				}
				switch lineBytes[i] {
				case '\n':
					// JSON strings cannot hold a raw newline: the line was cut inside a string.
					return splitValue{Raw: append(buf, lineBytes[from:i]...), Line: start, Err: errors.New("line ends inside a JSON string (truncated record?)")}, nil
				case '\\':
					escaped = true
				case '"':
					inString = false
				}
				i++
				continue
			}
			for i < len(lineBytes) && !structStop[lineBytes[i]] {
				i++
			}
			if i == len(lineBytes) {
				break
			}
			switch lineBytes[i] {
			case '"':
				inString = true
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					// A value within one line (JSON lines) is handed out where it lies, uncopied.
					raw := lineBytes[from : i+1]
					if len(buf) > 0 {
						buf = append(buf, raw...)
						raw = buf
					}
					if rest := bytes.TrimLeft(lineBytes[i+1:], " \t\r"); len(bytes.TrimSpace(rest)) > 0 {
						// Another value on the same line: hand it back for the next call, with
						// its line end, so a string it leaves open ends with the line.
						s.pending, s.pendLine = append([]byte(nil), rest...), lineNo
					}
					return splitValue{Raw: raw, Line: start}, nil
				}
			}
			i++
		}
		buf = append(buf, lineBytes[from:]...)
		if s.maxValue > 0 && len(buf) > s.maxValue {
			// Drop the oversized value and resynchronise at the next column-0 '{'.
			for {
				b, err := s.r.ReadSlice('\n')
				s.consumed += int64(len(b))
				if len(b) > 0 && b[0] == '{' {
					s.pending, s.pendLine = append([]byte(nil), b...), s.line
					s.line++
					break
				}
				if len(b) > 0 && b[len(b)-1] == '\n' {
					s.line++
				}
				if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
					break
				}
			}
			return splitValue{Raw: buf[:256], Line: start, Err: fmt.Errorf("value larger than %d bytes", s.maxValue)}, nil
		}
	}
}

// resplit scans a Whole value the consumer could not take as one value; next returns what the
// scan makes of it.
func (s *valueSplitter) resplit(v splitValue) {
	s.pending, s.pendLine = append([]byte(nil), v.line...), v.Line
}

// inStringStop and structStop are the bytes the scan must look at inside and outside strings;
// it skips runs of the others in a tight loop.
var inStringStop, structStop = func() (in, out [256]bool) {
	in['"'], in['\\'], in['\n'] = true, true, true
	for _, c := range []byte(`"{}[]`) {
		out[c] = true
	}
	return
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isSpaceRune(r rune) bool { return r < 0x80 && isSpace(byte(r)) }

func printable(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(c)
	}
	return fmt.Sprintf("\\x%02x", c)
}
