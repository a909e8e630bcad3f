// Package jsonscan is a validating single-pass JSON scanner for the few fields kairn reads of
// large documents. It accepts and rejects exactly what encoding/json does (RFC 8259 syntax;
// invalid UTF-8 inside strings is accepted and replaced by U+FFFD when decoded; numbers decoded
// into interface values must fit a float64), and decodes values the way encoding/json decodes
// them into interface values (map[string]any, []any, float64, string, bool, nil). What it does
// not decode it skips without allocating. collect's differential fuzz test holds it to
// encoding/json.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// SyntaxError is a malformed document.
type SyntaxError struct {
	Msg    string
	Offset int
}

func (e *SyntaxError) Error() string { return e.Msg + " at offset " + strconv.Itoa(e.Offset) }

// RangeError is a number that does not fit a float64 where one is decoded.
var RangeError = errors.New("number out of float64 range")

func syntax(msg string, off int) error { return &SyntaxError{Msg: msg, Offset: off} }

// strTab marks the bytes a string scan stops at: '"', '\\', control characters and non-ASCII.
var strTab = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf
	}
	return
}()

// specials has the high bit set in each of the eight bytes of x that a string scan stops at, or
// at least in the first of them: the "has a zero byte" and "has a byte less than n" tricks are
// exact up to the first byte they find, and above it may flag bytes that borrowed from it.
func specials(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	return ((quote-ones)&^quote | (backslash-ones)&^backslash | (x-ones*0x20)&^x | x) & highs
}

// WS skips whitespace from i.
func WS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// End checks that only whitespace follows i.
func End(b []byte, i int) error {
	if i = WS(b, i); i != len(b) {
		return syntax("invalid character after top-level value", i)
	}
	return nil
}

// skipString returns the end of the string starting at b[i] == '"' and whether it has escapes
// or bytes that need checking as UTF-8. It steps over eight bytes at a time to the next byte
// it must look at.
func skipString(b []byte, i int) (end int, plain bool, err error) {
	plain = true
	i++
	for {
		if i+8 <= len(b) {
			m := specials(binary.LittleEndian.Uint64(b[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(b) && !strTab[b[i]] {
				i++
			}
			if i >= len(b) {
				return 0, false, syntax("unexpected end of JSON input in string", i)
			}
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, plain, nil
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return 0, false, syntax("unexpected end of JSON input in string escape", i)
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, syntax("unexpected end of JSON input in \\u escape", i)
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, false, syntax("invalid character in \\u hexadecimal character escape", i)
					}
				}
				i += 6
			default:
				return 0, false, syntax("invalid character in string escape code", i+1)
			}
		case c >= utf8.RuneSelf:
			plain = false
			i++
		default:
			return 0, false, syntax("invalid character in string literal", i)
		}
	}
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// skipNumber returns the end of the number starting at i.
func skipNumber(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, syntax("unexpected end of JSON input in number", i)
	}
	switch {
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return 0, syntax("invalid character in numeric literal", i)
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, syntax("invalid character after decimal point in numeric literal", i)
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, syntax("invalid character in exponent of numeric literal", i)
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	return i, nil
}

// floatOK reports whether a syntactically valid number fits a float64 (what encoding/json
// checks when it decodes a number into an interface value). Short numbers without an exponent
// always do.
func floatOK(num []byte) bool {
	if len(num) < 300 {
		exp := false
		for _, c := range num {
			if c == 'e' || c == 'E' {
				exp = true
				break
			}
		}
		if !exp {
			return true
		}
	}
	_, err := strconv.ParseFloat(string(num), 64)
	return err == nil
}

func literal(b []byte, i int, word string) (int, error) {
	if len(b)-i < len(word) {
		return 0, syntax("unexpected end of JSON input in literal", len(b))
	}
	for k := 1; k < len(word); k++ {
		if b[i+k] != word[k] {
			return 0, syntax("invalid character in literal "+word, i+k)
		}
	}
	return i + len(word), nil
}

// Skip validates the value at i (after whitespace) and returns where it ends. With numbers set,
// every number in it must fit a float64, as when encoding/json decodes it into an interface.
func Skip(b []byte, i int, numbers bool) (int, error) {
	i = WS(b, i)
	if i >= len(b) {
		return 0, syntax("unexpected end of JSON input", i)
	}
	switch c := b[i]; c {
	case '"':
		end, _, err := skipString(b, i)
		return end, err
	case '{':
		i = WS(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return 0, syntax("invalid character looking for beginning of object key string", i)
			}
			end, _, err := skipString(b, i)
			if err != nil {
				return 0, err
			}
			i = WS(b, end)
			if i >= len(b) || b[i] != ':' {
				return 0, syntax("invalid character after object key", i)
			}
			if i, err = Skip(b, i+1, numbers); err != nil {
				return 0, err
			}
			i = WS(b, i)
			if i >= len(b) {
				return 0, syntax("unexpected end of JSON input in object", i)
			}
			if b[i] == '}' {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, syntax("invalid character after object key:value pair", i)
			}
			i = WS(b, i+1)
		}
	case '[':
		i = WS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = Skip(b, i, numbers); err != nil {
				return 0, err
			}
			i = WS(b, i)
			if i >= len(b) {
				return 0, syntax("unexpected end of JSON input in array", i)
			}
			if b[i] == ']' {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, syntax("invalid character after array element", i)
			}
			i++
		}
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			end, err := skipNumber(b, i)
			if err == nil && numbers && !floatOK(b[i:end]) {
				return 0, RangeError
			}
			return end, err
		}
		return 0, syntax("invalid character looking for beginning of value", i)
	}
}

// SkipValid is Skip for a document validated before (a body the collector checked): it finds
// the end of the value without checking it (IndexByte over strings instead of a byte loop). On
// input that is not valid JSON it still returns an index within b, or an error at a truncated
// value, and never panics.
func SkipValid(b []byte, i int) (int, error) {
	i = WS(b, i)
	if i >= len(b) {
		return 0, syntax("unexpected end of JSON input", i)
	}
	switch b[i] {
	case '"':
		return skipValidString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipValidString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, syntax("unexpected end of JSON input", i)
	}
	for j := i + 1; j < len(b); j++ { // a number or literal ends at a delimiter
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j, nil
		}
	}
	return len(b), nil
}

// skipValidString is the end of the string at b[i] == '"': the first quote after it that is not
// escaped, found with IndexByte.
func skipValidString(b []byte, i int) (int, error) {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, syntax("unexpected end of JSON input in string", len(b))
		}
		j += k
		backslashes := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return j + 1, nil
		}
		j++
	}
}

// String decodes the string at b[i] == '"' as encoding/json does, and returns where it ends.
func String(b []byte, i int) (string, int, error) {
	end, plain, err := skipString(b, i)
	if err != nil {
		return "", 0, err
	}
	if plain {
		return string(b[i+1 : end-1]), end, nil
	}
	s, _ := unquote(b[i+1 : end-1])
	return s, end, nil
}

// KeyBytes returns the raw bytes of the key string at b[i] == '"' when it needs no unescaping
// (the common case, no allocation), else its decoded form; and where the string ends.
func KeyBytes(b []byte, i int) ([]byte, int, error) {
	end, plain, err := skipString(b, i)
	if err != nil {
		return nil, 0, err
	}
	if plain {
		return b[i+1 : end-1], end, nil
	}
	s, _ := unquote(b[i+1 : end-1])
	return []byte(s), end, nil
}

// Object calls fn for each member of the object at i (after whitespace) with its decoded key and
// the offset of its value; fn returns where the value ends. A value that is not an object fails
// with an error IsNotObject recognises.
func Object(b []byte, i int, fn func(key []byte, v int) (int, error)) (end int, err error) {
	i = WS(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, errNotObject
	}
	i = WS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, syntax("invalid character looking for beginning of object key string", i)
		}
		key, kend, err := KeyBytes(b, i)
		if err != nil {
			return 0, err
		}
		i = WS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return 0, syntax("invalid character after object key", i)
		}
		v := WS(b, i+1)
		if v >= len(b) {
			return 0, syntax("unexpected end of JSON input", v)
		}
		if i, err = fn(key, v); err != nil {
			return 0, err
		}
		i = WS(b, i)
		if i >= len(b) {
			return 0, syntax("unexpected end of JSON input in object", i)
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntax("invalid character after object key:value pair", i)
		}
		i = WS(b, i+1)
	}
}

var errNotObject = errors.New("not an object")

// IsNotObject reports whether Object failed because the value is not an object.
func IsNotObject(err error) bool { return err == errNotObject }

// Array calls fn for each element of the array at i (after whitespace) with its offset; fn
// returns where the element ends.
func Array(b []byte, i int, fn func(v int) (int, error)) (int, error) {
	i = WS(b, i)
	if i >= len(b) || b[i] != '[' {
		return 0, errNotObject
	}
	i = WS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i = WS(b, i); i >= len(b) {
			return 0, syntax("unexpected end of JSON input", i)
		}
		if i, err = fn(i); err != nil {
			return 0, err
		}
		i = WS(b, i)
		if i >= len(b) {
			return 0, syntax("unexpected end of JSON input in array", i)
		}
		if b[i] == ']' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntax("invalid character after array element", i)
		}
		i++
	}
}

// Any decodes the value at i (after whitespace) as encoding/json decodes into an interface value.
// Members for which drop returns true are validated (numbers included) but left out, as if
// deleted from the decoded map afterwards (an earlier duplicate of the key goes too); path is
// the keys from the top-level object down to the member's own (array elements add no key), first
// the first byte of its value.
func Any(b []byte, i int, drop func(path []string, first byte) bool) (any, int, error) {
	d := anyDecoder{b: b, drop: drop}
	return d.value(i)
}

type anyDecoder struct {
	b    []byte
	drop func(path []string, first byte) bool
	path []string
}

func (d *anyDecoder) value(i int) (any, int, error) {
	b := d.b
	i = WS(b, i)
	if i >= len(b) {
		return nil, 0, syntax("unexpected end of JSON input", i)
	}
	switch c := b[i]; c {
	case '"':
		return String(b, i)
	case '{':
		m := map[string]any{}
		end, err := Object(b, i, func(key []byte, v int) (int, error) {
			k := string(key)
			if d.drop != nil {
				d.path = append(d.path, k)
				if d.drop(d.path, b[v]) {
					d.path = d.path[:len(d.path)-1]
					delete(m, k)
					return Skip(b, v, true)
				}
			}
			x, end, err := d.value(v)
			if d.drop != nil {
				d.path = d.path[:len(d.path)-1]
			}
			if err != nil {
				return 0, err
			}
			m[k] = x
			return end, nil
		})
		return m, end, err
	case '[':
		a := []any{}
		end, err := Array(b, i, func(v int) (int, error) {
			x, end, err := d.value(v)
			if err != nil {
				return 0, err
			}
			a = append(a, x)
			return end, nil
		})
		return a, end, err
	case 't':
		end, err := literal(b, i, "true")
		return true, end, err
	case 'f':
		end, err := literal(b, i, "false")
		return false, end, err
	case 'n':
		end, err := literal(b, i, "null")
		return nil, end, err
	default:
		if c == '-' || '0' <= c && c <= '9' {
			end, err := skipNumber(b, i)
			if err != nil {
				return nil, 0, err
			}
			f, err := strconv.ParseFloat(string(b[i:end]), 64)
			if err != nil {
				return nil, 0, RangeError
			}
			return f, end, nil
		}
		return nil, 0, syntax("invalid character looking for beginning of value", i)
	}
}

// AppendFold appends encoding/json's case folding of a field name (fold.go) to out: a key
// matches a struct field when its fold equals the field name's fold. Callers pass a buffer on
// their stack, so matching an unknown key allocates nothing.
func AppendFold(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// unquote is encoding/json's unquoteBytes (decode.go) on a string's contents: escapes decoded,
// invalid UTF-8 and lone surrogates replaced by U+FFFD.
func unquote(s []byte) (string, bool) {
	r := 0
	for r < len(s) {
		c := s[r]
		if c == '\\' || c == '"' || c < ' ' {
			break
		}
		if c < utf8.RuneSelf {
			r++
			continue
		}
		rr, size := utf8.DecodeRune(s[r:])
		if rr == utf8.RuneError && size == 1 {
			break
		}
		r += size
	}
	if r == len(s) {
		return string(s), true
	}
	b := make([]byte, len(s)+2*utf8.UTFMax)
	w := copy(b, s[0:r])
	for r < len(s) {
		if w >= len(b)-2*utf8.UTFMax {
			nb := make([]byte, (len(b)+utf8.UTFMax)*2)
			copy(nb, b[0:w])
			b = nb
		}
		switch c := s[r]; {
		case c == '\\':
			r++
			if r >= len(s) {
				return "", false
			}
			switch s[r] {
			default:
				return "", false
			case '"', '\\', '/', '\'':
				b[w] = s[r]
				r++
				w++
			case 'b':
				b[w] = '\b'
				r++
				w++
			case 'f':
				b[w] = '\f'
				r++
				w++
			case 'n':
				b[w] = '\n'
				r++
				w++
			case 'r':
				b[w] = '\r'
				r++
				w++
			case 't':
				b[w] = '\t'
				r++
				w++
			case 'u':
				r--
				rr := getu4(s[r:])
				if rr < 0 {
					return "", false
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := getu4(s[r:])
					if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
						r += 6
						w += utf8.EncodeRune(b[w:], dec)
						break
					}
					rr = unicode.ReplacementChar
				}
				w += utf8.EncodeRune(b[w:], rr)
			}
		case c == '"', c < ' ':
			return "", false
		case c < utf8.RuneSelf:
			b[w] = c
			r++
			w++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			w += utf8.EncodeRune(b[w:], rr)
		}
	}
	return string(b[0:w]), true
}

func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}
