package jsonscan

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// TestSkipStringWords: the eight-bytes-at-a-time string scan finds every quote, backslash,
// control character and non-ASCII byte at every offset, as encoding/json's validation and a
// plain byte loop do.
func TestSkipStringWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	special := []byte{'"', '\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xc3, 0xff, 'n', 'u', '0'}
	for n := range 200000 {
		l := rng.IntN(40)
		s := make([]byte, l)
		for i := range s {
			s[i] = 'a' + byte(rng.IntN(26))
		}
		for k := rng.IntN(3); k > 0 && l > 0; k-- {
			s[rng.IntN(l)] = special[rng.IntN(len(special))]
		}
		doc := append(append([]byte{'"'}, s...), '"')
		end, plain, err := skipString(doc, 0)
		valid := json.Valid(doc)
		if (err == nil && end == len(doc)) != valid {
			t.Fatalf("case %d %q: end %d err %v, json.Valid %v", n, doc, end, err, valid)
		}
		if valid {
			wantPlain := utf8.Valid(s)
			for _, c := range s {
				if c == '\\' || c >= 0x80 {
					wantPlain = false
				}
			}
			if plain != wantPlain {
				t.Fatalf("case %d %q: plain %v, want %v", n, doc, plain, wantPlain)
			}
			if got, _, _ := String(doc, 0); true {
				var want string
				json.Unmarshal(doc, &want)
				if got != want {
					t.Fatalf("case %d %q: String %q, encoding/json %q", n, doc, got, want)
				}
			}
		}
	}
}

// FuzzSkipValid: on every document Skip and End accept, SkipValid ends where Skip does; on
// anything else it
// returns an index within the input or an error, and does not panic.
func FuzzSkipValid(f *testing.F) {
	for _, s := range []string{`"a\"b"`, `"a\\"`, `"a\\\"b"`, `{"k":[1,2.5e3,{"x":"}"}],"t":true}`, `[]`, `{}`, `null`,
		`-1.5 `, `[{"a":"\u00e9\\\\"},"]"]`, `{"a":`, `"abc`, `[[[`, `tru`, ` {"a" : [ null , false ] } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gerr := SkipValid(b, 0)
		if gerr == nil && (got <= 0 || got > len(b)) {
			t.Fatalf("%q: SkipValid ended at %d, outside the input", b, got)
		}
		want, err := Skip(b, 0, false)
		if err != nil || End(b, want) != nil {
			return
		}
		if gerr != nil || got != want {
			t.Fatalf("%q: SkipValid %d, %v; Skip %d", b, got, gerr, want)
		}
	})
}
