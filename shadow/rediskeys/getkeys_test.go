package rediskeys

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/internal/testenv"
)

// resp is a minimal RESP2 client for the cross-check (the core module has
// no Redis client dependency).
type resp struct {
	c net.Conn
	r *bufio.Reader
}

func (p *resp) do(args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = p.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return p.read()
}

type respErr string

func (e respErr) Error() string { return string(e) }

func (p *resp) read() (any, error) {
	line, err := p.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, fmt.Errorf("empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, respErr(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(p.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			v, err := p.read()
			if err != nil {
				if _, ok := err.(respErr); !ok {
					return nil, err
				}
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

type jsonArg struct {
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Token     string    `json:"token"`
	Multiple  bool      `json:"multiple"`
	Optional  bool      `json:"optional"`
	Arguments []jsonArg `json:"arguments"`
}

func hasKey(a jsonArg) bool {
	if a.Type == "key" {
		return true
	}
	for _, c := range a.Arguments {
		if hasKey(c) {
			return true
		}
	}
	return false
}

// sampleArgv builds one argv for a command from its argument tree:
// optional arguments are left out unless withKeys and they hold a key;
// oneof takes the first alternative (or the pick-th alternative holding a
// key); every value is "1" so counts and numbers parse.
func sampleArgv(name string, args []jsonArg, withKeys bool, pick int) []string {
	argv := strings.Fields(name)
	n := 0
	var walk func(as []jsonArg)
	emit := func(a jsonArg) {
		if a.Token != "" {
			argv = append(argv, a.Token)
		}
		switch a.Type {
		case "pure-token":
		case "key":
			n++
			argv = append(argv, fmt.Sprintf("key%d", n))
		case "block":
			walk(a.Arguments)
		case "oneof":
			alts := a.Arguments
			choice := alts[0]
			if withKeys {
				var keyed []jsonArg
				for _, c := range alts {
					if hasKey(c) {
						keyed = append(keyed, c)
					}
				}
				if len(keyed) > 0 {
					choice = keyed[pick%len(keyed)]
				}
			}
			walk([]jsonArg{choice})
		case "pattern":
			argv = append(argv, "p*")
		default:
			argv = append(argv, "1")
		}
	}
	walk = func(as []jsonArg) {
		for _, a := range as {
			if a.Optional && !(withKeys && hasKey(a)) {
				continue
			}
			emit(a)
		}
	}
	walk(args)
	return argv
}

// TestKeyPositionsMatchServer cross-checks KeyPositions with the real
// server's COMMAND GETKEYS on sample argvs built from the JSON argument
// trees, for every command of the table that has key specs and that the
// server knows.
func TestKeyPositionsMatchServer(t *testing.T) {
	src := commandsJSON(t)
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		testenv.Missing(t, "Redis", addr, err)
	}
	defer conn.Close()
	p := &resp{c: conn, r: bufio.NewReader(conn)}

	var doc struct {
		Commands map[string]struct {
			KeySpecs  []json.RawMessage `json:"key_specs"`
			Arguments []jsonArg         `json:"arguments"`
		} `json:"commands"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range doc.Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var checked, argvs, unknownToServer, notPossible, stricter int
	for _, name := range names {
		jc := doc.Commands[name]
		if len(jc.KeySpecs) == 0 {
			continue
		}
		info, err := p.do(append([]string{"COMMAND", "INFO"}, strings.ReplaceAll(strings.ToLower(name), " ", "|"))...)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := info.([]any); !ok || len(l) != 1 || l[0] == nil {
			unknownToServer++
			continue
		}
		ok := false
		seen := map[string]bool{}
		for v, variant := range []struct {
			keys bool
			pick int
		}{{false, 0}, {true, 0}, {true, 1}} {
			argv := sampleArgv(name, jc.Arguments, variant.keys, variant.pick)
			if seen[strings.Join(argv, " ")] {
				continue
			}
			seen[strings.Join(argv, " ")] = true
			reply, err := p.do(append([]string{"COMMAND", "GETKEYS"}, argv...)...)
			if err != nil {
				if _, isResp := err.(respErr); !isResp {
					t.Fatal(err)
				}
				continue // the server finds no keys or rejects the sample
			}
			var server []string
			for _, k := range reply.([]any) {
				server = append(server, k.(string))
			}
			anyArgv := make([]any, len(argv))
			for i, a := range argv {
				anyArgv[i] = a
			}
			c := FindCommand(anyArgv)
			if c == nil {
				t.Errorf("%s: not in the table", name)
				break
			}
			ps, err := c.KeyPositions(anyArgv, nil)
			if err == ErrUnknownSpec && (c.Name == "SORT" || c.Name == "SORT_RO" || c.Name == "MIGRATE") {
				continue // handled by policy, not by positions
			}
			if err == ErrBadArgs && len(server) == 0 {
				stricter++ // we refuse what the server would reject when run: fail closed
				continue
			}
			if err != nil {
				t.Errorf("%s variant %d %q: %v; server says %v", name, v, argv, err, server)
				continue
			}
			var ours []string
			for _, p := range ps {
				ours = append(ours, argv[p.Index])
			}
			if !slices.Equal(ours, server) {
				t.Errorf("%s %q: ours %v, server %v", name, argv, ours, server)
			}
			ok = true
			argvs++
		}
		if ok {
			checked++
		} else {
			notPossible++
		}
	}
	t.Logf("COMMAND GETKEYS cross-check: %d commands checked on %d argvs; %d unknown to this server; %d without a sample the server accepts; %d argvs refused (bad key count) where the server names no key",
		checked, argvs, unknownToServer, notPossible, stricter)
	if checked < 150 {
		t.Fatalf("only %d commands cross-checked", checked)
	}
}
