// Package vault connects samd to HashiCorp Vault: a crypto.Signer backed
// by the Transit secrets engine, for operators whose transaction-file or
// CRL signing keys live in Vault, and secrets (the HSM PIN) read from the
// KV version 2 engine at start.
//
// Vault is reached over TLS with a token, or with AppRole credentials
// whose token is renewed for as long as the client lives. Key material
// never leaves Vault: Transit signs a digest samd computed (prehashed),
// and samd reads only the public key.
package vault

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/secret"
)

// Config says how to reach and log in to Vault.
type Config struct {
	// Address is Vault's URL, https://… (http only for a test server on
	// loopback).
	Address string
	// CAFile, if set, is the CA bundle Vault's certificate chains to.
	CAFile string
	// Token logs in with a token; or RoleID and SecretID with AppRole
	// (mounted at AppRoleMount, default "approle").
	Token              secret.Bytes
	RoleID             string
	SecretID           secret.Bytes
	AppRoleMount       string
	Namespace          string
	Logger             *slog.Logger
	insecureSkipVerify bool
}

// Client is a logged-in Vault client.
type Client struct {
	api  *api.Client
	log  *slog.Logger
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New logs in to Vault. With AppRole, the token is renewed in the
// background, and replaced by a new login when it can no longer be.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ac := api.DefaultConfig()
	ac.Address = cfg.Address
	if cfg.CAFile != "" || cfg.insecureSkipVerify {
		if err := ac.ConfigureTLS(&api.TLSConfig{CACert: cfg.CAFile, Insecure: cfg.insecureSkipVerify}); err != nil {
			return nil, fmt.Errorf("vault: TLS: %w", err)
		}
	}
	if ac.Error != nil {
		return nil, fmt.Errorf("vault: %w", ac.Error)
	}
	ac.MaxRetries = 2
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	c.ClearToken() // never VAULT_TOKEN from the environment by accident
	if cfg.Namespace != "" {
		c.SetNamespace(cfg.Namespace)
	}
	v := &Client{api: c, log: cfg.Logger}
	switch {
	case !(cfg.Token.Len() == 0) && cfg.RoleID == "":
		c.SetToken(string(cfg.Token.Reveal()))
		if _, err := c.Auth().Token().LookupSelfWithContext(ctx); err != nil {
			return nil, vaultErr("token lookup", err)
		}
	case cfg.RoleID != "" && !(cfg.SecretID.Len() == 0) && (cfg.Token.Len() == 0):
		mount := cfg.AppRoleMount
		if mount == "" {
			mount = "approle"
		}
		login := func(ctx context.Context) (*api.Secret, error) {
			s, err := c.Logical().WriteWithContext(ctx, "auth/"+mount+"/login", map[string]any{"role_id": cfg.RoleID, "secret_id": string(cfg.SecretID.Reveal())})
			if err != nil {
				return nil, vaultErr("AppRole login", err)
			}
			if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
				return nil, errors.New("vault: AppRole login returned no token")
			}
			c.SetToken(s.Auth.ClientToken)
			return s, nil
		}
		s, err := login(ctx)
		if err != nil {
			return nil, err
		}
		rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		v.stop = stop
		v.wg.Add(1)
		go v.renew(rctx, s, login)
	default:
		return nil, errors.New("vault: give a token, or an AppRole role id and secret id")
	}
	return v, nil
}

// renew keeps the AppRole token alive: Vault's lifetime watcher renews it
// (auth/token/renew-self) until it cannot, then samd logs in again.
func (v *Client) renew(ctx context.Context, s *api.Secret, login func(context.Context) (*api.Secret, error)) {
	defer v.wg.Done()
	for ctx.Err() == nil {
		w, err := v.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: s})
		if err != nil {
			v.log.Error("vault: token renewal", "err", err)
			return
		}
		go w.Start()
	watch:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case <-w.RenewCh():
				v.log.Debug("vault: token renewed")
			case err := <-w.DoneCh():
				if err != nil {
					v.log.Warn("vault: token renewal stopped; logging in again", "err", err)
				}
				break watch
			}
		}
		w.Stop()
		for ctx.Err() == nil {
			if s, err = login(ctx); err == nil {
				break
			}
			v.log.Error("vault: login failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}
}

// Close stops token renewal.
func (v *Client) Close() {
	if v.stop != nil {
		v.stop()
	}
	v.wg.Wait()
}

// vaultErr keeps Vault's own error message (its "errors" array) and
// never the request, which may carry a secret id.
func vaultErr(op string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		kind := errkind.Unavailable
		switch re.StatusCode {
		case 403:
			kind = errkind.Denied
		case 404:
			kind = errkind.NotFound
		case 400:
			kind = errkind.InvalidInput
		}
		return &errkind.Error{Kind: kind, Msg: fmt.Sprintf("vault: %s: HTTP %d: %s", op, re.StatusCode, strings.Join(re.Errors, "; "))}
	}
	return &errkind.Error{Kind: errkind.Unavailable, Msg: "vault: " + op, Err: err}
}

// ReadKV reads one field of a KV version 2 secret (mount "secret", path
// "samd/prod" reads /v1/secret/data/samd/prod).
func (v *Client) ReadKV(ctx context.Context, mount, path, field string) (secret.Bytes, error) {
	s, err := v.api.KVv2(mount).Get(ctx, path)
	if err != nil {
		if errors.Is(err, api.ErrSecretNotFound) {
			return secret.Bytes{}, errkind.Errorf(errkind.NotFound, "vault: no secret %s/%s", mount, path)
		}
		return secret.Bytes{}, vaultErr("read "+mount+"/"+path, err)
	}
	val, ok := s.Data[field].(string)
	if !ok {
		return secret.Bytes{}, errkind.Errorf(errkind.NotFound, "vault: secret %s/%s has no string field %q", mount, path, field)
	}
	return secret.New([]byte(val)), nil
}

// Signer is a crypto.Signer whose key is a Transit key: ECDSA P-256 or
// P-384 (ASN.1 signatures) or RSA-2048/3072/4096 (RSASSA-PSS with a salt
// as long as the hash, or PKCS #1 v1.5). It signs digests (prehashed).
type Signer struct {
	v           *Client
	mount, name string
	version     int
	pub         crypto.PublicKey
}

var _ crypto.Signer = (*Signer)(nil)

// Signer reads a Transit key's latest version and public key.
func (v *Client) Signer(ctx context.Context, mount, name string) (*Signer, error) {
	s, err := v.api.Logical().ReadWithContext(ctx, mount+"/keys/"+name)
	if err != nil {
		return nil, vaultErr("read key "+mount+"/"+name, err)
	}
	if s == nil || s.Data == nil {
		return nil, errkind.Errorf(errkind.NotFound, "vault: no Transit key %s/%s", mount, name)
	}
	latest, err := number(s.Data["latest_version"])
	if err != nil {
		return nil, fmt.Errorf("vault: key %s/%s: latest_version: %w", mount, name, err)
	}
	versions, _ := s.Data["keys"].(map[string]any)
	ver, _ := versions[strconv.Itoa(latest)].(map[string]any)
	pemText, _ := ver["public_key"].(string)
	blk, _ := pem.Decode([]byte(pemText))
	if blk == nil {
		return nil, fmt.Errorf("vault: key %s/%s v%d has no public key (is it a signing key type?)", mount, name, latest)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("vault: key %s/%s: %w", mount, name, err)
	}
	switch pub.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey:
	default:
		return nil, fmt.Errorf("vault: key %s/%s is a %T key: samd signs with ECDSA or RSA", mount, name, pub)
	}
	return &Signer{v: v, mount: mount, name: name, version: latest, pub: pub}, nil
}

func number(x any) (int, error) {
	switch n := x.(type) {
	case float64:
		return int(n), nil
	case string:
		return strconv.Atoi(n)
	case interface{ Int64() (int64, error) }:
		i, err := n.Int64()
		return int(i), err
	}
	return 0, fmt.Errorf("not a number: %v", x)
}

// Public returns the key version's public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign signs a digest with Transit (prehashed, this key version only).
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var hashName string
	switch opts.HashFunc() {
	case crypto.SHA256:
		hashName = "sha2-256"
	case crypto.SHA384:
		hashName = "sha2-384"
	case crypto.SHA512:
		hashName = "sha2-512"
	default:
		return nil, fmt.Errorf("vault: hash %v is not one samd signs with", opts.HashFunc())
	}
	if len(digest) != opts.HashFunc().Size() {
		return nil, errors.New("vault: the digest does not match the hash")
	}
	req := map[string]any{"input": base64.StdEncoding.EncodeToString(digest), "prehashed": true, "key_version": s.version}
	switch s.pub.(type) {
	case *ecdsa.PublicKey:
		req["marshaling_algorithm"] = "asn1"
	case *rsa.PublicKey:
		req["signature_algorithm"] = "pkcs1v15"
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != opts.HashFunc().Size() {
				return nil, errors.New("vault: RSA-PSS signatures use a salt as long as the hash")
			}
			req["signature_algorithm"] = "pss"
			req["salt_length"] = "hash"
		}
	}
	sec, err := s.v.api.Logical().WriteWithContext(context.Background(), s.mount+"/sign/"+s.name+"/"+hashName, req)
	if err != nil {
		return nil, vaultErr("sign with "+s.mount+"/"+s.name, err)
	}
	sig, _ := sec.Data["signature"].(string)
	prefix := "vault:v" + strconv.Itoa(s.version) + ":"
	if !strings.HasPrefix(sig, prefix) {
		return nil, fmt.Errorf("vault: signature of %s/%s is not from key version %d", s.mount, s.name, s.version)
	}
	return base64.StdEncoding.DecodeString(sig[len(prefix):])
}
