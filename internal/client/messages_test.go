package client

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/wire"
)

// TestServerMessages: every JSON text message is shown to OnMessage by its
// type, the server's error is logged and carried by the close that follows,
// a normal close is no error, and anything else is not a close.
func TestServerMessages(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	var seen []string
	sm := serverMessages{log: &log, onMessage: func(typ string, _ []byte) { seen = append(seen, typ) }}
	if _, ok := sm.text([]byte("not json")); ok {
		t.Error("a message that is not JSON was read")
	}
	if typ, ok := sm.text([]byte(`{"type":"level","rms_db":-20}`)); !ok || typ != wire.TypeLevel {
		t.Errorf("level: %q %v", typ, ok)
	}
	if typ, ok := sm.text([]byte(`{"type":"error","code":"room_deleted","message":"the room was deleted"}`)); !ok || typ != wire.TypeError {
		t.Errorf("error: %q %v", typ, ok)
	}
	if strings.Join(seen, ",") != "level,error" {
		t.Errorf("OnMessage saw %v", seen)
	}
	if !strings.Contains(log.String(), "server error room_deleted: the room was deleted") {
		t.Errorf("log: %q", log.String())
	}

	if closed, err := sm.closed(&websocket.CloseError{Code: wire.CloseNormal}); !closed || err != nil {
		t.Errorf("normal close: %v %v", closed, err)
	}
	closed, err := sm.closed(&websocket.CloseError{Code: 4004, Text: "room deleted"})
	var ce *CloseError
	if !closed || !errors.As(err, &ce) || ce.Code != 4004 || ce.Reason != "room deleted" || ce.Message != "the room was deleted" {
		t.Errorf("close 4004: %v %#v", closed, err)
	}
	if closed, err := sm.closed(io.ErrUnexpectedEOF); closed || err != nil {
		t.Errorf("a lost connection is no close: %v %v", closed, err)
	}
}
