package agent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Masker hides secrets in text the way the agent's secret masker hides them
// in what it displays, so that what Brickferry prints itself (local mode) and
// what no masker reads (uploaded summary files) is as safe as the agent's log.
//
// For every value it hides (Agent.Sdk/SecretMasking, the value encoders the
// agent registers in HostContext.cs; see docs PLATFORM-FACTS.md "Masking"):
//
//   - the value itself, and each line of a multi-line value (the agent adds
//     each line of a secret variable on its own);
//   - its base64 forms at the three byte alignments (ValueEncoders
//     Base64StringEscape, Base64StringEscapeShift1/2): the encoding of the
//     value and of the value without its first one or two bytes, with padding
//     as the agent computes them, and also without the trailing characters
//     that depend on the bytes after the value, so that the secret inside a
//     longer encoded string (base64("Bearer <PAT>")) is hidden wherever it
//     sits;
//   - its URL-escaped form (UriDataEscape, .NET Uri.EscapeDataString: every
//     byte but A-Z a-z 0-9 - . _ ~ as %XX) and the query form with '+' for a
//     space that Go's url.QueryEscape writes;
//   - its JSON string form (JsonStringEscape).
//
// Forms shorter than minSecretLength are not hidden: masking them would
// garble the log, and the agent skips them as well.
//
// A dump cut short by databricks-sdk-go's body logger ("abc... (12 more
// bytes)", logger/httplog/body_logger.go onlyNBytes) can end in the first
// characters of a secret, which no masker can recognise; Mask cuts such a
// dump back to before that beginning.
//
// A Masker is not safe for concurrent use; Log guards its own.
type Masker struct {
	forms  []string // every form, longest first
	values map[string]bool
}

// Add registers a secret and its derived forms.
func (m *Masker) Add(secret string) {
	if m.values == nil {
		m.values = map[string]bool{}
	}
	if len(secret) < minSecretLength || m.values[secret] {
		return
	}
	m.values[secret] = true
	m.addForms(secret)
	if strings.ContainsAny(secret, "\r\n") {
		for _, line := range strings.Split(strings.ReplaceAll(secret, "\r\n", "\n"), "\n") {
			for _, v := range []string{line, strings.TrimSpace(line)} {
				if len(v) >= minSecretLength && !m.values[v] {
					m.values[v] = true
					m.addForms(v)
				}
			}
		}
	}
}

func (m *Masker) addForms(v string) {
	for _, f := range derivedForms(v) {
		if len(f) >= minSecretLength && !containsString(m.forms, f) {
			m.forms = append(m.forms, f)
			for i := len(m.forms) - 1; i > 0 && len(m.forms[i]) > len(m.forms[i-1]); i-- {
				m.forms[i], m.forms[i-1] = m.forms[i-1], m.forms[i]
			}
		}
	}
}

// derivedForms lists v and the forms the agent derives from it.
func derivedForms(v string) []string {
	forms := []string{v}
	b := []byte(v)
	for shift := 0; shift < 3 && shift < len(b); shift++ {
		rest := b[shift:]
		if shift == 0 || len(rest) > 0 {
			forms = append(forms, base64.StdEncoding.EncodeToString(rest))
		}
		// The aligned core: whole 3-byte groups only, whose characters do
		// not depend on what follows the secret.
		if n := len(rest) / 3 * 3; n > 0 {
			forms = append(forms, base64.StdEncoding.EncodeToString(rest[:n]))
		}
	}
	forms = append(forms, EscapeDataString(v), url.QueryEscape(v))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		forms = append(forms, strings.TrimSuffix(strings.TrimSpace(buf.String()), `"`)[1:])
	}
	return forms
}

// EscapeDataString is .NET's Uri.EscapeDataString (RFC 3986): every byte but
// the unreserved characters A-Z a-z 0-9 - . _ ~ is written as %XX.
func EscapeDataString(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// Mask replaces every registered form in s with "***".
func (m *Masker) Mask(s string) string {
	if len(m.forms) == 0 {
		return s
	}
	s = m.cutTruncated(s)
	for _, f := range m.forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, "***")
		}
	}
	return s
}

// truncationMarker is databricks-sdk-go's mark of a string cut short in a
// debug dump (logger/httplog/body_logger.go onlyNBytes).
var truncationMarker = regexp.MustCompile(`\.\.\. \((\d+) more bytes\)`)

// cutTruncated shortens each cut-short string in a dump that ends in the
// beginning of a secret form, so that the beginning is not shown either.
func (m *Masker) cutTruncated(s string) string {
	if !strings.Contains(s, " more bytes)") {
		return s
	}
	locs := truncationMarker.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	prev := 0
	for _, loc := range locs {
		head := s[prev:loc[0]]
		more, _ := strconv.Atoi(s[loc[2]:loc[3]])
		if n := m.secretPrefixAtEnd(head); n > 0 {
			head = head[:len(head)-n]
			more += n
		}
		b.WriteString(head)
		b.WriteString("... (" + strconv.Itoa(more) + " more bytes)")
		prev = loc[1]
	}
	b.WriteString(s[prev:])
	return b.String()
}

// secretPrefixAtEnd is the length of the longest end of s that is the
// beginning of a registered form (and not the whole form, which Mask hides).
func (m *Masker) secretPrefixAtEnd(s string) int {
	best := 0
	for _, f := range m.forms {
		for n := min(len(f)-1, len(s)); n > best; n-- {
			if strings.HasSuffix(s, f[:n]) {
				best = n
				break
			}
		}
	}
	return best
}

// TruncateUTF8 cuts s to at most n bytes without splitting a UTF-8 character.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
