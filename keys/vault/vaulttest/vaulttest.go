// Package vaulttest is an HTTP server that answers the Vault API calls
// samd makes, with the request and response shapes of Vault's API
// documentation (Transit: create key, read key, sign; KV v2: read, write;
// AppRole login; token lookup-self and renew-self), errors included
// ({"errors": [...]} with Vault's status codes). Vault itself cannot be
// installed here; `make test-vault` runs the same tests against a real
// Vault at VAULT_ADDR.
package vaulttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// Server is a test Vault.
type Server struct {
	*httptest.Server
	RootToken        string
	RoleID, SecretID string
	// LeaseSeconds is the AppRole token's TTL (renewable).
	LeaseSeconds int

	mu       sync.Mutex
	tokens   map[string]bool
	keys     map[string]transitKey
	kv       map[string]map[string]any
	renewals int
	logins   int
}

type transitKey struct {
	typ  string
	priv crypto.Signer
	at   time.Time
}

// New starts a test Vault on TLS (loopback).
func New() *Server {
	s := &Server{RootToken: "hvs.test-root-token", RoleID: "samd-role-id", SecretID: "samd-secret-id", LeaseSeconds: 3600,
		tokens: map[string]bool{}, keys: map[string]transitKey{}, kv: map[string]map[string]any{}}
	s.tokens[s.RootToken] = true
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	return s
}

// CAPEM is the server certificate, for the client's CA file.
func (s *Server) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// Client returns an API client of the server with its root token.
func (s *Server) Client() *api.Client {
	ac := api.DefaultConfig()
	ac.Address = s.URL
	ac.HttpClient = s.Server.Client()
	c, err := api.NewClient(ac)
	if err != nil {
		panic(err)
	}
	c.SetToken(s.RootToken)
	return c
}

// Renewals counts renew-self calls; Logins counts AppRole logins.
func (s *Server) Renewals() int { s.mu.Lock(); defer s.mu.Unlock(); return s.renewals }

// Logins counts AppRole logins.
func (s *Server) Logins() int { s.mu.Lock(); defer s.mu.Unlock(); return s.logins }

func fail(w http.ResponseWriter, code int, msgs ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if msgs == nil {
		msgs = []string{}
	}
	json.NewEncoder(w).Encode(map[string]any{"errors": msgs})
}

func reply(w http.ResponseWriter, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	base := map[string]any{"request_id": "00000000-0000-0000-0000-000000000000", "lease_id": "", "renewable": false, "lease_duration": 0,
		"data": nil, "wrap_info": nil, "warnings": nil, "auth": nil}
	for k, v := range body {
		base[k] = v
	}
	json.NewEncoder(w).Encode(base)
}

func (s *Server) auth(token string) map[string]any {
	return map[string]any{"client_token": token, "accessor": "acc-" + token[len(token)-6:], "policies": []string{"default", "samd"},
		"token_policies": []string{"default", "samd"}, "metadata": map[string]string{"role_name": "samd"},
		"lease_duration": s.LeaseSeconds, "renewable": true, "entity_id": "", "token_type": "service", "orphan": true}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && err.Error() != "EOF" {
			fail(w, http.StatusBadRequest, "failed to parse JSON input: "+err.Error())
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == "auth/approle/login" && r.Method != http.MethodGet {
		if body["role_id"] != s.RoleID || body["secret_id"] != s.SecretID {
			fail(w, http.StatusBadRequest, "invalid role or secret ID")
			return
		}
		s.logins++
		tok := fmt.Sprintf("hvs.approle-token-%06d", s.logins)
		s.tokens[tok] = true
		reply(w, map[string]any{"auth": s.auth(tok)})
		return
	}
	token := r.Header.Get("X-Vault-Token")
	if !s.tokens[token] {
		fail(w, http.StatusForbidden, "permission denied")
		return
	}
	switch {
	case path == "auth/token/lookup-self" && r.Method == http.MethodGet:
		reply(w, map[string]any{"data": map[string]any{"id": token, "policies": []string{"default"}, "ttl": s.LeaseSeconds, "renewable": token != s.RootToken}})
	case path == "auth/token/renew-self" && r.Method != http.MethodGet:
		s.renewals++
		reply(w, map[string]any{"auth": s.auth(token)})
	case strings.HasPrefix(path, "transit/keys/"):
		s.transitKeys(w, r, strings.TrimPrefix(path, "transit/keys/"), body)
	case strings.HasPrefix(path, "transit/sign/") && r.Method != http.MethodGet:
		s.sign(w, strings.TrimPrefix(path, "transit/sign/"), body)
	case strings.HasPrefix(path, "secret/data/"):
		s.kvData(w, r, strings.TrimPrefix(path, "secret/data/"), body)
	default:
		fail(w, http.StatusNotFound)
	}
}

func (s *Server) transitKeys(w http.ResponseWriter, r *http.Request, name string, body map[string]any) {
	if r.Method != http.MethodGet {
		typ, _ := body["type"].(string)
		if typ == "" {
			typ = "aes256-gcm96"
		}
		if _, ok := s.keys[name]; ok {
			reply(w, nil)
			return
		}
		var priv crypto.Signer
		var err error
		switch typ {
		case "ecdsa-p256":
			priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case "ecdsa-p384":
			priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		case "rsa-2048", "rsa-3072", "rsa-4096":
			var bits int
			fmt.Sscanf(typ, "rsa-%d", &bits)
			priv, err = rsa.GenerateKey(rand.Reader, bits)
		default:
			fail(w, http.StatusBadRequest, fmt.Sprintf("unknown key type: %s", typ))
			return
		}
		if err != nil {
			fail(w, http.StatusInternalServerError, err.Error())
			return
		}
		s.keys[name] = transitKey{typ: typ, priv: priv, at: time.Now()}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	k, ok := s.keys[name]
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	der, _ := x509.MarshalPKIXPublicKey(k.priv.Public())
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	reply(w, map[string]any{"data": map[string]any{
		"name": name, "type": k.typ, "latest_version": 1, "min_decryption_version": 1, "min_encryption_version": 0,
		"supports_signing": true, "supports_encryption": strings.HasPrefix(k.typ, "rsa"), "supports_derivation": false, "exportable": false,
		"deletion_allowed": false, "derived": false,
		"keys": map[string]any{"1": map[string]any{"creation_time": k.at.Format(time.RFC3339Nano), "name": k.typ, "public_key": pub}},
	}})
}

func (s *Server) sign(w http.ResponseWriter, rest string, body map[string]any) {
	name, hashName, _ := strings.Cut(rest, "/")
	k, ok := s.keys[name]
	if !ok {
		fail(w, http.StatusBadRequest, "signing key not found")
		return
	}
	if hashName == "" {
		hashName, _ = body["hash_algorithm"].(string)
	}
	h, ok := map[string]crypto.Hash{"sha2-256": crypto.SHA256, "sha2-384": crypto.SHA384, "sha2-512": crypto.SHA512}[hashName]
	if !ok {
		fail(w, http.StatusBadRequest, "unsupported hash algorithm "+hashName)
		return
	}
	if v, ok := body["key_version"].(float64); ok && v != 1 {
		fail(w, http.StatusBadRequest, "requested version for signing does not exist")
		return
	}
	in, err := base64.StdEncoding.DecodeString(fmt.Sprint(body["input"]))
	if err != nil {
		fail(w, http.StatusBadRequest, "unable to decode input as base64: "+err.Error())
		return
	}
	digest := in
	if body["prehashed"] != true {
		hh := h.New()
		hh.Write(in)
		digest = hh.Sum(nil)
	}
	if len(digest) != h.Size() {
		fail(w, http.StatusBadRequest, "input must be the size of the hash")
		return
	}
	var opts crypto.SignerOpts = h
	if _, isRSA := k.priv.(*rsa.PrivateKey); isRSA && body["signature_algorithm"] == "pss" {
		salt := rsa.PSSSaltLengthAuto // Vault's default "auto": the largest salt
		if body["salt_length"] == "hash" {
			salt = rsa.PSSSaltLengthEqualsHash
		}
		opts = &rsa.PSSOptions{SaltLength: salt, Hash: h}
	}
	sig, err := k.priv.Sign(rand.Reader, digest, opts)
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	reply(w, map[string]any{"data": map[string]any{"key_version": 1, "signature": "vault:v1:" + base64.StdEncoding.EncodeToString(sig)}})
}

func (s *Server) kvData(w http.ResponseWriter, r *http.Request, path string, body map[string]any) {
	meta := map[string]any{"created_time": time.Now().UTC().Format(time.RFC3339Nano), "custom_metadata": nil, "deletion_time": "", "destroyed": false, "version": 1}
	if r.Method != http.MethodGet {
		data, _ := body["data"].(map[string]any)
		s.kv[path] = data
		reply(w, map[string]any{"data": meta})
		return
	}
	data, ok := s.kv[path]
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	reply(w, map[string]any{"data": map[string]any{"data": data, "metadata": meta}})
}
