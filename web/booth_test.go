package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/livestate"
)

// TestBoothKeys: a booth language gets a generated key on its language
// object, shown to organizers and in the booth link, never in /public; a
// PATCH keeps it unless asked to rotate; a client cannot choose one; a
// language without a booth has none.
func TestBoothKeys(t *testing.T) {
	f := newFixture(t, "https://talks.example.org")
	rm := f.createRoom(`{"id":"conf","source_language":"en","languages":[{"code":"es","booth":true},{"code":"fr"}]}`)
	key := rm.Languages[0].BoothKey
	if !strings.HasPrefix(key, "bth_") || rm.Languages[1].BoothKey != "" {
		t.Fatalf("booth keys %+v", rm.Languages)
	}
	if want := "https://talks.example.org/rooms/conf/booth/es#key=" + key; rm.Links.Booths["es"] != want || len(rm.Links.Booths) != 1 {
		t.Fatalf("booth links %v, want es: %s", rm.Links.Booths, want)
	}
	pub := f.request("GET", "/api/v1/rooms/conf/public", "", "")
	mustStatus(t, pub, http.StatusOK)
	if strings.Contains(string(pub.body), key) || strings.Contains(string(pub.body), "booth_key") {
		t.Fatalf("/public holds a booth key: %s", pub.body)
	}
	qr := f.admin("GET", "/api/v1/rooms/conf/qr.png?for=booth:es", "")
	mustStatus(t, qr, http.StatusOK)
	mustStatus(t, f.admin("GET", "/api/v1/rooms/conf/qr.png?for=booth:fr", ""), http.StatusNotFound)

	// A PATCH of the languages without keys keeps them (a client that
	// sends back what it got, keys included, too).
	r := f.admin("PATCH", "/api/v1/rooms/conf", `{"languages":[{"code":"es","booth":true},{"code":"fr"},{"code":"de","booth":true}]}`)
	mustStatus(t, r, http.StatusOK)
	var got adminRoomJSON
	r.decode(t, &got)
	if got.Languages[0].BoothKey != key || !strings.HasPrefix(got.Languages[2].BoothKey, "bth_") {
		t.Fatalf("after PATCH: %+v", got.Languages)
	}
	r = f.admin("PATCH", "/api/v1/rooms/conf", `{"languages":[{"code":"ES","booth":true,"booth_key":"`+key+`"},{"code":"fr"}]}`)
	mustStatus(t, r, http.StatusOK)
	r.decode(t, &got)
	if got.Languages[0].BoothKey != key {
		t.Fatalf("a key sent back unchanged was changed: %+v", got.Languages)
	}

	// Bad input changes nothing.
	for _, body := range []string{
		`{"languages":[{"code":"es","booth":true,"booth_key":"bth_mine"}]}`,
		`{"languages":[{"code":"es","booth":"yes"}]}`,
	} {
		r := f.admin("PATCH", "/api/v1/rooms/conf", body)
		mustStatus(t, r, http.StatusBadRequest)
	}
	mustStatus(t, f.admin("POST", "/api/v1/rooms", `{"id":"chosen","source_language":"en","languages":[{"code":"es","booth":true,"booth_key":"bth_x"}]}`), http.StatusBadRequest)
	r = f.admin("GET", "/api/v1/rooms/conf", "")
	r.decode(t, &got)
	if got.Languages[0].BoothKey != key {
		t.Fatalf("a refused PATCH changed the key: %+v", got.Languages)
	}

	// Rotation: new keys for every booth.
	r = f.admin("PATCH", "/api/v1/rooms/conf", `{"rotate_booth_keys":true}`)
	mustStatus(t, r, http.StatusOK)
	got = adminRoomJSON{}
	r.decode(t, &got)
	if nk := got.Languages[0].BoothKey; nk == key || !strings.HasPrefix(nk, "bth_") {
		t.Fatalf("rotated key %q (was %q)", nk, key)
	}
	if f.logs.String() != "" && strings.Contains(f.logs.String(), got.Languages[0].BoothKey) {
		t.Fatal("a booth key reached the log")
	}

	// No booth: no key.
	r = f.admin("PATCH", "/api/v1/rooms/conf", `{"languages":[{"code":"es"},{"code":"fr"}]}`)
	mustStatus(t, r, http.StatusOK)
	var none adminRoomJSON // a fresh one: decoding merges into what it holds
	r.decode(t, &none)
	if none.Languages[0].BoothKey != "" || len(none.Links.Booths) != 0 {
		t.Fatalf("a language without a booth kept a key: %+v %v", none.Languages, none.Links.Booths)
	}
}

// TestStatusShowsBooths: the status says who is in each booth and who is
// on air.
func TestStatusShowsBooths(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(`{"id":"conf","source_language":"en","languages":[{"code":"es","booth":true},{"code":"fr"}]}`)
	now := time.Now().UTC()
	f.putState(livestate.InterpreterKey("conf", "es", "a1"), livestate.Interpreter{Node: "n", Since: now, Name: "Ines", OnAir: true, TookAt: now})
	f.putState(livestate.InterpreterKey("conf", "es", "b2"), livestate.Interpreter{Node: "n", Since: now.Add(time.Second), Name: "Bea"})
	var st Status
	r := f.admin("GET", "/api/v1/rooms/conf/status", "")
	mustStatus(t, r, http.StatusOK)
	r.decode(t, &st)
	b := st.Languages[0].Booth
	if b == nil || !b.Staffed || !b.OnAir || len(b.Interpreters) != 2 || b.Interpreters[0].Name != "Ines" || !b.Interpreters[0].OnAir || b.Interpreters[1].OnAir {
		t.Fatalf("es booth %+v", b)
	}
	if st.Languages[1].Booth != nil {
		t.Fatalf("fr has no booth, status says %+v", st.Languages[1].Booth)
	}
}
