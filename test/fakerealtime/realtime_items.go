package fakerealtime

import (
	"encoding/json"
	"fmt"
	"slices"
)

// item is a conversation item.
type item struct {
	id         string
	role       string // user, assistant, system
	typ        string // message, function_call, function_call_output
	status     string
	audioMs    int64
	text       string // input_text / output_text content
	transcript string
	turn       int // > 0: the n-th user audio turn of the session
	hasAudio   bool
}

func (it *item) json() map[string]any {
	m := map[string]any{"id": it.id, "object": "realtime.item", "type": it.typ, "status": it.status}
	if it.typ != "message" {
		return m
	}
	m["role"] = it.role
	var content []any
	switch {
	case it.role == "assistant" && it.hasAudio:
		content = append(content, map[string]any{"type": "output_audio", "transcript": it.transcript})
	case it.role == "assistant":
		content = append(content, map[string]any{"type": "output_text", "text": it.text})
	case it.hasAudio:
		content = append(content, map[string]any{"type": "input_audio", "transcript": nilIfEmpty(it.transcript)})
	default:
		content = append(content, map[string]any{"type": "input_text", "text": it.text})
	}
	m["content"] = content
	return m
}

// tokens is the fake's token count of an item in a model's context.
func (it *item) tokens() int {
	n := 4 + len(it.text)/4 + len(it.transcript)/4
	if it.hasAudio {
		if it.role == "assistant" {
			n += int(it.audioMs / 50)
		} else {
			n += int(it.audioMs / 100)
		}
	}
	return n
}

// insert adds an item to the default conversation at index i and says so.
func (rt *realtime) insert(it *item, i int) {
	var prev any
	if i > 0 {
		prev = rt.items[i-1].id
	}
	rt.items = slices.Insert(rt.items, i, it)
	rt.byID[it.id] = it
	rt.ss.send(map[string]any{"type": "conversation.item.added", "previous_item_id": prev, "item": it.json()})
	if it.status != "in_progress" {
		rt.ss.send(map[string]any{"type": "conversation.item.done", "previous_item_id": prev, "item": it.json()})
	}
}

func (rt *realtime) lastItemID() any {
	if len(rt.items) == 0 {
		return nil
	}
	return rt.items[len(rt.items)-1].id
}

func (rt *realtime) indexOf(id string) int {
	return slices.IndexFunc(rt.items, func(it *item) bool { return it.id == id })
}

func (rt *realtime) itemIDParam(ev clientEvent, allowed ...string) (map[string]json.RawMessage, string, *apiError) {
	m, e := ev.object(append([]string{"type", "event_id", "item_id"}, allowed...)...)
	if e != nil {
		return nil, "", e
	}
	id, e := requiredStr(m, "", "item_id")
	return m, id, e
}

func noItem(id, path string) *apiError {
	return &apiError{"invalid_request_error", "item_not_found",
		fmt.Sprintf("Item with item_id '%s' not found.", id), path}
}

func (rt *realtime) deleteItem(ev clientEvent) *apiError {
	_, id, e := rt.itemIDParam(ev)
	if e != nil {
		return e
	}
	i := rt.indexOf(id)
	if i < 0 {
		return noItem(id, "item_id")
	}
	rt.items = slices.Delete(rt.items, i, i+1)
	delete(rt.byID, id)
	rt.ss.send(map[string]any{"type": "conversation.item.deleted", "item_id": id})
	return nil
}

func (rt *realtime) retrieveItem(ev clientEvent) *apiError {
	_, id, e := rt.itemIDParam(ev)
	if e != nil {
		return e
	}
	it, ok := rt.byID[id]
	if !ok {
		return noItem(id, "item_id")
	}
	rt.ss.send(map[string]any{"type": "conversation.item.retrieved", "item": it.json()})
	return nil
}

func (rt *realtime) truncateItem(ev clientEvent) *apiError {
	m, id, e := rt.itemIDParam(ev, "content_index", "audio_end_ms")
	if e != nil {
		return e
	}
	it := rt.byID[id]
	if it == nil || rt.indexOf(id) < 0 {
		return noItem(id, "item_id")
	}
	if it.role != "assistant" {
		return &apiError{"invalid_request_error", "invalid_value", "Only assistant messages can be truncated.", "item_id"}
	}
	if m["audio_end_ms"] == nil {
		return missing("audio_end_ms")
	}
	end, e := integer(m["audio_end_ms"], "audio_end_ms", 0, int(it.audioMs))
	if e != nil {
		return e
	}
	it.audioMs, it.transcript = int64(end), ""
	rt.ss.send(map[string]any{"type": "conversation.item.truncated", "item_id": id, "content_index": 0, "audio_end_ms": end})
	return nil
}

// parseItem reads an inline conversation item (conversation.item.create or
// response.input): a message with text or audio content, or a function
// call or its output.
func parseItem(raw json.RawMessage, path string) (*item, *apiError) {
	typ, e := objectType(raw, path)
	if e != nil {
		return nil, e
	}
	it := &item{typ: typ, status: "completed"}
	switch typ {
	case "message":
		m, e := object(raw, path, "id", "type", "object", "status", "role", "content")
		if e != nil {
			return nil, e
		}
		if it.role, e = requiredStr(m, path, "role"); e != nil {
			return nil, e
		}
		if !slices.Contains([]string{"user", "assistant", "system"}, it.role) {
			return nil, invalidValue(join(path, "role"), it.role, []string{"user", "assistant", "system"})
		}
		if raw, ok := m["id"]; ok {
			if it.id, e = str(raw, join(path, "id")); e != nil {
				return nil, e
			}
		}
		var parts []json.RawMessage
		if err := json.Unmarshal(m["content"], &parts); err != nil || m["content"] == nil {
			return nil, invalidType(join(path, "content"), "an array", m["content"])
		}
		for i, p := range parts {
			pp := fmt.Sprintf("%s.content[%d]", path, i)
			c, e := object(p, pp, "type", "text", "audio", "transcript")
			if e != nil {
				return nil, e
			}
			typ, e := str(c["type"], join(pp, "type"))
			if e != nil {
				return nil, e
			}
			kinds := map[string][]string{"user": {"input_text", "input_audio"}, "system": {"input_text"},
				"assistant": {"output_text", "output_audio"}}[it.role]
			if !slices.Contains(kinds, typ) {
				return nil, invalidValue(join(pp, "type"), typ, kinds)
			}
			switch typ {
			case "input_text", "output_text":
				t, e := str(c["text"], join(pp, "text"))
				if e != nil {
					return nil, e
				}
				it.text += t
			case "input_audio", "output_audio":
				if raw, ok := c["audio"]; ok {
					pcm, e := decodeAudio(raw, join(pp, "audio"))
					if e != nil {
						return nil, e
					}
					it.audioMs += int64(len(pcm) / 2 / samplesMs)
				}
				it.hasAudio = true
				if raw, ok := c["transcript"]; ok && !isNull(raw) {
					if it.transcript, e = str(raw, join(pp, "transcript")); e != nil {
						return nil, e
					}
				}
			}
		}
	case "function_call", "function_call_output":
		if _, e := object(raw, path, "id", "type", "object", "status", "call_id", "name", "arguments", "output"); e != nil {
			return nil, e
		}
	default:
		return nil, invalidValue(join(path, "type"), typ, []string{"message", "function_call", "function_call_output"})
	}
	if it.id == "" {
		it.id = newID("item_")
	}
	return it, nil
}

func (rt *realtime) createItem(ev clientEvent) *apiError {
	m, e := ev.object("type", "event_id", "previous_item_id", "item")
	if e != nil {
		return e
	}
	if m["item"] == nil {
		return missing("item")
	}
	it, e := parseItem(m["item"], "item")
	if e != nil {
		return e
	}
	if _, dup := rt.byID[it.id]; dup {
		return &apiError{"invalid_request_error", "item_id_already_exists",
			fmt.Sprintf("Item with id '%s' already exists.", it.id), "item.id"}
	}
	at := len(rt.items)
	if raw, ok := m["previous_item_id"]; ok && !isNull(raw) {
		prev, e := str(raw, "previous_item_id")
		if e != nil {
			return e
		}
		if prev == "root" {
			at = 0
		} else if i := rt.indexOf(prev); i >= 0 {
			at = i + 1
		} else {
			return noItem(prev, "previous_item_id")
		}
	}
	// User audio added this way (a turn replayed on a new connection) is
	// not a turn of this session: responses over it say "[xx] (audio)."
	// and it is not in SessionInfo.Turns.
	rt.insert(it, at)
	return nil
}
