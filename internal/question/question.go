// Package question is the audience's questions: an attendee asks to speak
// (in their own language), the organizers or the speaker accept, the
// attendee's phone becomes a mic of the room ("q-<id>") until the question
// ends. Questions live in a JetStream KV bucket, so the API (which takes
// them) and ingest (which lets the asker speak) agree across a cluster.
package question

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/kvwatch"
)

// Bucket is the questions' KV bucket; keys are "<room>.<id>".
const Bucket = "babelcast_questions"

// MaxAge is how long a question is kept: a day of a conference.
const MaxAge = 24 * time.Hour

// States of a question.
const (
	Waiting  = "waiting"  // asked, not yet taken
	Accepted = "accepted" // the asker may speak
	Ended    = "ended"    // over: answered, withdrawn or declined
)

// MicPrefix starts the mic id of an accepted question: "q-<id>".
const MicPrefix = "q-"

// Question is one request to speak.
type Question struct {
	ID       string    `json:"id"`
	Room     string    `json:"room"`
	Name     string    `json:"name,omitempty"`
	Language string    `json:"language"`
	State    string    `json:"state"`
	Asked    time.Time `json:"asked"`
	Changed  time.Time `json:"changed"`
	// TokenHash is the SHA-256 of the asker's token: the token itself is
	// handed out once, never stored.
	TokenHash string `json:"token_hash"`
}

// Mic is the mic id the question speaks through.
func (q *Question) Mic() string { return MicPrefix + q.ID }

// CheckToken reports whether token is this question's.
func (q *Question) CheckToken(token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(h[:])), []byte(q.TokenHash)) == 1
}

// Errors of Store.
var (
	ErrNotFound = errors.New("no such question")
	ErrState    = errors.New("the question is not in a state that allows this")
)

// Store keeps questions in the Bucket.
type Store struct{ kv jetstream.KeyValue }

// NewStore uses kv, the Bucket.
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// BucketConfig is the Bucket's configuration.
func BucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: Bucket, Description: "babelcast audience questions", History: 1, TTL: MaxAge}
}

func key(roomID, id string) string { return roomID + "." + id }

// Ask records a new waiting question of room, and returns it with the
// token that lets the asker follow it, speak and withdraw it.
func (s *Store) Ask(ctx context.Context, roomID, name, lang string) (*Question, string, error) {
	secret := make([]byte, 18)
	if _, err := rand.Read(secret); err != nil {
		return nil, "", err
	}
	now := time.Now().UTC()
	for range 5 {
		id := newID()
		token := "qtk_" + id + "_" + base64.RawURLEncoding.EncodeToString(secret)
		h := sha256.Sum256([]byte(token))
		q := &Question{ID: id, Room: roomID, Name: name, Language: lang, State: Waiting, Asked: now, Changed: now,
			TokenHash: hex.EncodeToString(h[:])}
		b, _ := json.Marshal(q)
		if _, err := s.kv.Create(ctx, key(roomID, id), b); err == nil {
			return q, token, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, "", fmt.Errorf("store question: %w", err)
		}
	}
	return nil, "", errors.New("store question: no free id")
}

// newID is a short id, easy to read out: 6 characters of a-z and 2-9.
func newID() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// IDOfToken is the question id a token names (tokens say whose they are,
// so a speaker connection can find its question), or "".
func IDOfToken(token string) string {
	rest, ok := strings.CutPrefix(token, "qtk_")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "_")
	if !ok {
		return ""
	}
	return id
}

// Get returns a question of room and its revision.
func (s *Store) Get(ctx context.Context, roomID, id string) (*Question, uint64, error) {
	if id == "" || strings.ContainsAny(id, ".*> ") {
		return nil, 0, ErrNotFound
	}
	e, err := s.kv.Get(ctx, key(roomID, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get question: %w", err)
	}
	var q Question
	if err := json.Unmarshal(e.Value(), &q); err != nil {
		return nil, 0, fmt.Errorf("question %s: %w", id, err)
	}
	return &q, e.Revision(), nil
}

// List returns the room's questions, the oldest first.
func (s *Store) List(ctx context.Context, roomID string) ([]*Question, error) {
	w, err := s.kv.Watch(ctx, roomID+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list questions: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := []*Question{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list questions: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("list questions: watch stopped")
			}
			if e == nil {
				slices.SortFunc(out, func(a, b *Question) int { return a.Asked.Compare(b.Asked) })
				return out, nil
			}
			var q Question
			if json.Unmarshal(e.Value(), &q) == nil {
				out = append(out, &q)
			}
		}
	}
}

// SetState moves a question to state: waiting → accepted → ended, or
// straight to ended. It returns the question as it is now.
func (s *Store) SetState(ctx context.Context, roomID, id, state string) (*Question, error) {
	for range 5 {
		q, rev, err := s.Get(ctx, roomID, id)
		if err != nil {
			return nil, err
		}
		switch {
		case q.State == state:
			return q, nil
		case q.State == Ended, state == Waiting:
			return q, ErrState
		}
		q.State, q.Changed = state, time.Now().UTC()
		b, _ := json.Marshal(q)
		if _, err := s.kv.Update(ctx, key(roomID, id), b, rev); err == nil {
			return q, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("update question: %w", err)
		}
	}
	return nil, errors.New("update question: changed concurrently, again and again")
}

// DeleteRoom forgets every question of a room.
func (s *Store) DeleteRoom(ctx context.Context, roomID string) error {
	qs, err := s.List(ctx, roomID)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if err := s.kv.Delete(ctx, key(roomID, q.ID)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
	}
	return nil
}

// Watch follows one question until ctx ends: it sends the question each
// time it changes, and nil once it is gone.
func (s *Store) Watch(ctx context.Context, roomID, id string) (<-chan *Question, error) {
	w, err := s.kv.Watch(ctx, key(roomID, id))
	if err != nil {
		return nil, err
	}
	return kvwatch.Decoded(ctx, w, 1, func(e jetstream.KeyValueEntry) (*Question, bool) {
		if e.Operation() != jetstream.KeyValuePut {
			return nil, true // gone
		}
		var q Question
		if json.Unmarshal(e.Value(), &q) != nil {
			return nil, false
		}
		return &q, true
	}), nil
}
