// SPDX-License-Identifier: Apache-2.0

package web

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Auth checks requests against users of an htpasswd file (bcrypt hashes
// only, as htpasswd -B writes them) with HTTP basic authentication, and/or
// a bearer token.
type Auth struct {
	users map[string][]byte // user → bcrypt hash
	token []byte

	mu   sync.Mutex
	good map[[32]byte]time.Time // verified user:password digests → expiry
}

// goodFor is how long a verified password is remembered: bcrypt costs tens
// of milliseconds by design, and the page sends several requests at once.
const goodFor = 5 * time.Minute

// maxGood bounds the remembered passwords.
const maxGood = 1024

// LoadAuth reads an htpasswd file and/or a token file (either may be "").
func LoadAuth(htpasswdFile, tokenFile string) (*Auth, error) {
	a := &Auth{users: map[string][]byte{}, good: map[[32]byte]time.Time{}}
	if htpasswdFile != "" {
		b, err := os.ReadFile(htpasswdFile)
		if err != nil {
			return nil, fmt.Errorf("htpasswd: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			user, hash, ok := strings.Cut(line, ":")
			if !ok || user == "" {
				return nil, fmt.Errorf("htpasswd %s line %d: want USER:HASH", htpasswdFile, n)
			}
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				return nil, fmt.Errorf("htpasswd %s line %d: user %q: only bcrypt hashes are accepted (htpasswd -B): %w", htpasswdFile, n, user, err)
			}
			a.users[user] = []byte(hash)
		}
		if len(a.users) == 0 {
			return nil, fmt.Errorf("htpasswd %s: no users", htpasswdFile)
		}
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		a.token = bytes.TrimSpace(b)
		if len(a.token) < 16 {
			return nil, fmt.Errorf("token file %s: the token is shorter than 16 characters", tokenFile)
		}
	}
	if len(a.users) == 0 && a.token == nil {
		return nil, errors.New("authentication: give an htpasswd file or a token file")
	}
	return a, nil
}

// Allow reports whether r carries valid credentials.
func (a *Auth) Allow(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok && a.token != nil {
		return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), a.token) == 1
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hash, known := a.users[user]
	if !known {
		return false
	}
	key := sha256.Sum256([]byte(user + "\x00" + pass + "\x00" + string(hash)))
	now := time.Now()
	a.mu.Lock()
	exp, seen := a.good[key]
	a.mu.Unlock()
	if seen && now.Before(exp) {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.good) >= maxGood {
		clear(a.good)
	}
	a.good[key] = now.Add(goodFor)
	a.mu.Unlock()
	return true
}

// Challenge answers a request without valid credentials.
func (a *Auth) Challenge(w http.ResponseWriter) {
	if len(a.users) > 0 {
		w.Header().Set("WWW-Authenticate", `Basic realm="kflow", charset="UTF-8"`)
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kflow"`)
	}
	writeError(w, http.StatusUnauthorized, errors.New("authentication required"))
}
