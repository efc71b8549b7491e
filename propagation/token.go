package propagation

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Token errors. [Keyring.Verify] returns one of them (wrapped with detail);
// use errors.Is, or [TokenReason] for a metric-friendly word.
var (
	ErrTokenMissing    = errors.New("shadowlane: load-test token missing")
	ErrTokenMalformed  = errors.New("shadowlane: load-test token malformed")
	ErrTokenUnknownKey = errors.New("shadowlane: load-test token signed with an unknown key")
	ErrTokenSignature  = errors.New("shadowlane: load-test token signature invalid")
	ErrTokenExpired    = errors.New("shadowlane: load-test token expired")
	ErrTokenMismatch   = errors.New("shadowlane: load-test token does not cover this mark")
	ErrNoKeys          = errors.New("shadowlane: no token keys configured")
	// ErrConflict: the request's carriers (repeated lines, letter cases of
	// a header name, own header and baggage) name different values.
	ErrConflict = errors.New("shadowlane: mark carriers disagree")
	// ErrEnvNotBound: trust.requireEnvBinding is set and the request's env
	// tag is not the one its token is bound to.
	ErrEnvNotBound = errors.New("shadowlane: env tag not bound by the load-test token")
)

// tokenReasons are the reasons of [TokenReason], in the order they are
// tried.
var tokenReasons = [...]struct {
	err    error
	reason string
}{
	{ErrTokenMissing, "missing"},
	{ErrTokenMalformed, "malformed"},
	{ErrTokenUnknownKey, "unknown_key"},
	{ErrTokenSignature, "bad_signature"},
	{ErrTokenExpired, "expired"},
	{ErrTokenMismatch, "mismatch"},
	{ErrNoKeys, "no_keys"},
	{ErrConflict, "conflict"},
	{ErrMalformed, "malformed_mark"},
	{ErrEnvNotBound, "env_not_bound"},
}

// TokenReason maps a token error to a short reason for metrics and logs.
func TokenReason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range tokenReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "invalid"
}

// MinSecretLen is the shortest HMAC secret a [Key] may have (bytes).
const MinSecretLen = 32

// Key is one HMAC-SHA256 signing key.
type Key struct {
	ID     string // 1..64 bytes of [A-Za-z0-9_-]; travels in the token
	Secret []byte // at least MinSecretLen bytes
}

// Claims are what a valid token vouches for.
type Claims struct {
	KeyID   string
	Run     string
	Env     string // empty: the token does not restrict the env tag
	Expires time.Time
}

// Keyring signs and verifies load-test tokens. The first key signs; every
// key verifies, so keys rotate by adding the new key first and removing the
// old one once its tokens have expired. A Keyring is safe for concurrent use.
//
// Token format (all ASCII, no padding):
//
//	v1.<key id>.<run>.<env>.<expiry unix seconds>.<base64url HMAC-SHA256>
//
// The MAC covers everything before the last dot. Run ids, env tags and key
// ids cannot contain '.', so the format is unambiguous.
type Keyring struct {
	keys   map[string][]byte
	signer string

	mu    sync.RWMutex
	cache map[string]Claims // verified tokens; bounded
}

const verifiedCacheSize = 4096

// NewKeyring validates keys and returns a keyring whose first key signs.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	k := &Keyring{keys: make(map[string][]byte, len(keys)), signer: keys[0].ID, cache: map[string]Claims{}}
	for i, key := range keys {
		if !ValidID(key.ID) {
			return nil, fmt.Errorf("shadowlane: token key %d: id %q must be 1..%d bytes of [A-Za-z0-9_-]", i, key.ID, MaxIDLen)
		}
		if len(key.Secret) < MinSecretLen {
			return nil, fmt.Errorf("shadowlane: token key %q: secret has %d bytes, want at least %d", key.ID, len(key.Secret), MinSecretLen)
		}
		if _, dup := k.keys[key.ID]; dup {
			return nil, fmt.Errorf("shadowlane: token key id %q appears twice", key.ID)
		}
		k.keys[key.ID] = append([]byte(nil), key.Secret...)
	}
	return k, nil
}

// KeyIDs returns the key ids, the signing key first.
func (k *Keyring) KeyIDs() []string {
	ids := []string{k.signer}
	for id := range k.keys {
		if id != k.signer {
			ids = append(ids, id)
		}
	}
	return ids
}

// Sign mints a token for run (and env, when not empty) valid until exp.
func (k *Keyring) Sign(run, env string, exp time.Time) (string, error) {
	if k == nil || len(k.keys) == 0 {
		return "", ErrNoKeys
	}
	if !ValidID(run) {
		return "", fmt.Errorf("%w: run %q", ErrMalformed, clip(run))
	}
	if env != "" && !ValidID(env) {
		return "", fmt.Errorf("%w: env %q", ErrMalformed, clip(env))
	}
	body := "v1." + k.signer + "." + run + "." + env + "." + strconv.FormatInt(exp.Unix(), 10)
	return body + "." + mac(k.keys[k.signer], body), nil
}

func mac(secret []byte, body string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// ParseToken splits a token into its claims and MAC without verifying it.
func ParseToken(tok string) (c Claims, body, sig string, err error) {
	if len(tok) > maxTokenLen {
		return c, "", "", fmt.Errorf("%w: %d bytes", ErrTokenMalformed, len(tok))
	}
	last := strings.LastIndexByte(tok, '.')
	if last < 0 {
		return c, "", "", fmt.Errorf("%w: no signature", ErrTokenMalformed)
	}
	body, sig = tok[:last], tok[last+1:]
	parts := strings.Split(body, ".")
	if len(parts) != 5 || parts[0] != "v1" {
		return c, "", "", fmt.Errorf("%w: want v1.<kid>.<run>.<env>.<exp>.<mac>", ErrTokenMalformed)
	}
	if !ValidID(parts[1]) || !ValidID(parts[2]) || (parts[3] != "" && !ValidID(parts[3])) {
		return c, "", "", fmt.Errorf("%w: bad key id, run or env", ErrTokenMalformed)
	}
	exp, perr := strconv.ParseInt(parts[4], 10, 64)
	if perr != nil || exp <= 0 || len(parts[4]) > 12 {
		return c, "", "", fmt.Errorf("%w: bad expiry", ErrTokenMalformed)
	}
	if len(sig) != 43 { // base64url of 32 bytes, unpadded
		return c, "", "", fmt.Errorf("%w: bad signature length", ErrTokenMalformed)
	}
	return Claims{KeyID: parts[1], Run: parts[2], Env: parts[3], Expires: time.Unix(exp, 0)}, body, sig, nil
}

// Verify checks tok and that it covers m at time now: the MAC matches a
// known key (constant-time compare), it has not expired, its run equals
// m.Run, and its env (when the token names one) equals m.Env.
func (k *Keyring) Verify(tok string, m Mark, now time.Time) (Claims, error) {
	c, err := k.VerifyClaims(tok, now)
	if err != nil {
		return Claims{}, err
	}
	if c.Run != m.Run {
		return Claims{}, fmt.Errorf("%w: token is for run %q, request claims %q", ErrTokenMismatch, c.Run, m.Run)
	}
	if c.Env != "" && c.Env != m.Env {
		return Claims{}, fmt.Errorf("%w: token is for env %q, request claims %q", ErrTokenMismatch, c.Env, m.Env)
	}
	return c, nil
}

// VerifyClaims checks tok's MAC (a known key, constant-time compare) and
// expiry at now, and returns what it vouches for: a valid token alone
// carries its mark.
func (k *Keyring) VerifyClaims(tok string, now time.Time) (Claims, error) {
	if k == nil || len(k.keys) == 0 {
		return Claims{}, ErrNoKeys
	}
	if tok == "" {
		return Claims{}, ErrTokenMissing
	}
	k.mu.RLock()
	c, hit := k.cache[tok]
	k.mu.RUnlock()
	if !hit {
		var body, sig string
		var err error
		c, body, sig, err = ParseToken(tok)
		if err != nil {
			return Claims{}, err
		}
		secret, ok := k.keys[c.KeyID]
		if !ok {
			return Claims{}, fmt.Errorf("%w: %q", ErrTokenUnknownKey, c.KeyID)
		}
		if !hmac.Equal([]byte(mac(secret, body)), []byte(sig)) {
			return Claims{}, ErrTokenSignature
		}
	}
	if !now.Before(c.Expires) {
		return Claims{}, fmt.Errorf("%w at %s", ErrTokenExpired, c.Expires.UTC().Format(time.RFC3339))
	}
	if !hit {
		k.mu.Lock()
		if len(k.cache) >= verifiedCacheSize {
			clear(k.cache)
		}
		k.cache[tok] = c
		k.mu.Unlock()
	}
	return c, nil
}
