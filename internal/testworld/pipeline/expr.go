package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// exprContext is what an expression can read: variables, the results and
// outputs of the jobs and stages this one depends on, and the state that
// succeeded()/failed() test.
type exprContext struct {
	variables map[string]string
	// dependencies: job name → {"result": ..., "outputs": {"step.var": value}}
	dependencies map[string]any
	// stageDependencies: stage → job → {"result", "outputs"}
	stageDependencies map[string]any
	// dependencyResults are the results succeeded()/failed() look at.
	dependencyResults []string
}

// evalExpression evaluates a runtime expression or condition.
func evalExpression(src string, ctx exprContext) (any, error) {
	p := &exprParser{src: src, ctx: ctx}
	v, err := p.expr()
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	p.space()
	if p.pos < len(p.src) {
		return nil, fmt.Errorf("expression %q: unexpected %q", src, p.src[p.pos:])
	}
	return v, nil
}

// evalCondition evaluates a condition; an empty one is succeeded().
func evalCondition(src string, ctx exprContext) (bool, error) {
	if strings.TrimSpace(src) == "" {
		src = "succeeded()"
	}
	v, err := evalExpression(src, ctx)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

type exprParser struct {
	src string
	pos int
	ctx exprContext
}

func (p *exprParser) space() {
	for p.pos < len(p.src) && unicode.IsSpace(rune(p.src[p.pos])) {
		p.pos++
	}
}

func (p *exprParser) peek() byte {
	p.space()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *exprParser) expect(c byte) error {
	if p.peek() != c {
		return fmt.Errorf("expected %q at offset %d", c, p.pos)
	}
	p.pos++
	return nil
}

func (p *exprParser) ident() string {
	p.space()
	start := p.pos
	for p.pos < len(p.src) {
		c := rune(p.src[p.pos])
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '_' && c != '-' {
			break
		}
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *exprParser) expr() (any, error) {
	switch c := p.peek(); {
	case c == '\'':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && (p.src[p.pos] == '.' || (p.src[p.pos] >= '0' && p.src[p.pos] <= '9')) {
			p.pos++
		}
		return strconv.ParseFloat(p.src[start:p.pos], 64)
	}
	name := p.ident()
	if name == "" {
		return nil, fmt.Errorf("unexpected %q at offset %d", p.src[p.pos:], p.pos)
	}
	if p.peek() == '(' {
		p.pos++
		var args []any
		for p.peek() != ')' {
			a, err := p.expr()
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			if p.peek() == ',' {
				p.pos++
			}
		}
		p.pos++
		return p.call(name, args)
	}
	var v any
	switch strings.ToLower(name) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	case "variables":
		m := map[string]any{}
		for k, val := range p.ctx.variables {
			m[strings.ToLower(k)] = val
		}
		v = m
	case "dependencies":
		v = p.ctx.dependencies
	case "stagedependencies":
		v = p.ctx.stageDependencies
	default:
		return nil, fmt.Errorf("unknown name %q (supported: variables, dependencies, stageDependencies and functions)", name)
	}
	for {
		switch p.peek() {
		case '.':
			p.pos++
			v = index(v, p.ident())
		case '[':
			p.pos++
			key, err := p.str()
			if err != nil {
				return nil, err
			}
			if err := p.expect(']'); err != nil {
				return nil, err
			}
			v = index(v, key)
		default:
			return v, nil
		}
	}
}

func (p *exprParser) str() (string, error) {
	if err := p.expect('\''); err != nil {
		return "", err
	}
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		if c == '\'' {
			if p.pos < len(p.src) && p.src[p.pos] == '\'' { // '' escapes a quote
				b.WriteByte('\'')
				p.pos++
				continue
			}
			return b.String(), nil
		}
		b.WriteByte(c)
	}
	return "", fmt.Errorf("unterminated string")
}

// index looks a key up case-insensitively, as Azure Pipelines does.
func index(v any, key string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	if val, ok := m[key]; ok {
		return val
	}
	for k, val := range m {
		if strings.EqualFold(k, key) {
			return val
		}
	}
	return nil
}

func (p *exprParser) call(name string, args []any) (any, error) {
	lower := strings.ToLower(name)
	need := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument(s)", name, n)
		}
		return nil
	}
	switch lower {
	case "succeeded", "failed", "succeededorfailed", "always", "canceled":
		if len(args) > 0 {
			return nil, fmt.Errorf("%s(job names) is not supported by the local runner; use %s()", name, name)
		}
		ok, failed := true, false
		for _, r := range p.ctx.dependencyResults {
			switch r {
			case "Failed", "Canceled":
				ok, failed = false, true
			case "Skipped":
				ok = false
			}
		}
		switch lower {
		case "succeeded":
			return ok, nil
		case "failed":
			return failed, nil
		case "succeededorfailed", "always":
			return true, nil
		default:
			return false, nil
		}
	case "eq", "ne":
		if err := need(2); err != nil {
			return nil, err
		}
		eq := strings.EqualFold(text(args[0]), text(args[1]))
		return eq == (lower == "eq"), nil
	case "and", "or":
		if len(args) < 2 {
			return nil, fmt.Errorf("%s takes two or more arguments", name)
		}
		for _, a := range args {
			if truthy(a) != (lower == "and") {
				return lower == "or", nil
			}
		}
		return lower == "and", nil
	case "not":
		if err := need(1); err != nil {
			return nil, err
		}
		return !truthy(args[0]), nil
	case "contains", "startswith", "endswith":
		if err := need(2); err != nil {
			return nil, err
		}
		a, b := strings.ToLower(text(args[0])), strings.ToLower(text(args[1]))
		switch lower {
		case "contains":
			return strings.Contains(a, b), nil
		case "startswith":
			return strings.HasPrefix(a, b), nil
		default:
			return strings.HasSuffix(a, b), nil
		}
	case "in":
		if len(args) < 1 {
			return nil, fmt.Errorf("in takes one or more arguments")
		}
		for _, a := range args[1:] {
			if strings.EqualFold(text(args[0]), text(a)) {
				return true, nil
			}
		}
		return false, nil
	case "coalesce":
		for _, a := range args {
			if text(a) != "" {
				return a, nil
			}
		}
		return "", nil
	}
	return nil, fmt.Errorf("function %s is not supported by the local runner", name)
}

func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != "" && !strings.EqualFold(v, "false")
	case float64:
		return v != 0
	}
	return true
}
