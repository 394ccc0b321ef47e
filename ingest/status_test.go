package ingest

import "testing"

// The status sent with ready already counts the connection's own mic
// among the room's live mics, though the state bucket may not have shown
// it yet: the first status never says the mic's room is empty.
func TestFirstStatusListsTheOwnMic(t *testing.T) {
	e := newEnv(t, nil)
	c := e.startMic(t, "panel-2", "Ana", "de")
	st := next(t, c, "status")
	found := false
	for _, m := range st.Mics {
		if m.Mic == "panel-2" && m.Name == "Ana" && m.Language == "de" {
			found = true
		}
	}
	if !found {
		t.Errorf("first status lists mics %+v, want panel-2 (Ana, de) among them", st.Mics)
	}
}
