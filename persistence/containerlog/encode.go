package containerlog

import (
	"bytes"
	"time"
	"unicode/utf8"
)

// AppendEntries appends data to buf as json-file lines, one entry per line
// of data (a trailing partial line is an entry of its own, as json-file
// does), all stamped t. The bytes are what encoding/json would produce for
// Entry, written by hand: a flood of short lines is mostly encoding, and
// reflection plus a time format per line made that several times slower.
func AppendEntries(buf []byte, stream int, data []byte, t time.Time) []byte {
	var ts [64]byte
	stamp := t.UTC().AppendFormat(ts[:0], time.RFC3339Nano)
	name := StreamName(stream)
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		data = data[len(line):]
		buf = append(buf, `{"log":`...)
		buf = appendString(buf, line)
		buf = append(buf, `,"stream":"`...)
		buf = append(buf, name...)
		buf = append(buf, `","time":"`...)
		buf = append(buf, stamp...)
		buf = append(buf, "\"}\n"...)
	}
	return buf
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does by default: HTML-safe,
// invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendString(buf, s []byte) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '"', '\\':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
