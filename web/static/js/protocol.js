// protocol.js: the server's WebSocket protocols (speaker and listener) as
// the pages speak them. The server's side is the Go package internal/wire;
// web/protocol_test.go checks that every value here equals its Go
// constant, so change both together.

/** Sample rate of the listener's audio (PCM16LE mono), and of a speaker's
 *  audio when its start message names no other. */
export const SAMPLE_RATE = 24000;

/** The mic a speaker connection is when its start message names none. */
export const DEFAULT_MIC = 'main';

/** The channel that is the floor itself: every mic, untranslated. */
export const FLOOR = 'floor';
/** The header of a listener's passcode on plain HTTP requests (never in a URL). */
export const HEADER_PASSCODE = 'X-Babelcast-Passcode';

/** Codecs of the audio both ways: the listener's ?codec=, the speaker's
 *  start message. Opus is 20 ms mono packets, each preceded by its length
 *  (2 bytes, big-endian), on a 48 kHz clock. */
export const Codec = Object.freeze({
  PCM: 'pcm',
  OPUS: 'opus',
});
export const OPUS_CLOCK_RATE = 48000;

/** Message types: the "type" field of every text message. */
export const Msg = Object.freeze({
  // speaker → server
  START: 'start',
  LANGUAGE: 'language',
  // server → speaker
  READY: 'ready',
  LEVEL: 'level',
  STATUS: 'status',
  ERROR: 'error',
  // server → listener
  HELLO: 'hello',
  CAPTION: 'caption',
  STATE: 'state',
  DELAY: 'delay',
  EARLIER: 'earlier',
  // interpreter → server (booth)
  TAKE: 'take',
  HAND_OVER: 'hand_over',
  MUTE: 'mute',
  // server → interpreter
  ON_AIR: 'on_air',
});

/** Close codes, and what the server means by them. */
export const Close = Object.freeze({
  NORMAL: 1000, // the session is over, nothing went wrong
  SHUTDOWN: 1001, // the server is shutting down: reconnect in a moment
  BAD_AUDIO: 1007, // a speaker's binary message was not PCM16
  BAD_MESSAGE: 1008, // a speaker's text message was refused, or its key changed
  TOO_LARGE: 1009, // a speaker's message was too large
  REPLACED: 4001, // a newer connection of the room's speaker took over
  PASSCODE_CHANGED: 4403, // wrong passcode (before the hello), or the room's passcode changed (after)
  ROOM_GONE: 4404, // the room was deleted, or the listener's language removed
  TOO_SLOW: 4408, // the listener fell behind the live stream
});

/** Codes of the speaker's error message. */
export const ErrorCode = Object.freeze({
  BAD_MESSAGE: 'bad_message',
  BAD_SAMPLE_RATE: 'bad_sample_rate',
  BAD_AUDIO: 'bad_audio',
  FRAME_TOO_LARGE: 'frame_too_large',
  REPLACED: 'replaced',
  ROOM_DELETED: 'room_deleted',
  BOOTH_REMOVED: 'booth_removed',
  KEY_ROTATED: 'key_rotated',
  SHUTTING_DOWN: 'shutting_down',
  BAD_MIC: 'bad_mic',
  BAD_LANGUAGE: 'bad_language',
  TOO_MANY_MICS: 'too_many_mics',
  BAD_HEAR: 'bad_hear',
});

/** Translator states of a channel, in state and status messages and the
 *  organizer API's status. */
export const ChannelState = Object.freeze({
  IDLE: 'idle',
  STARTING: 'starting',
  ACTIVE: 'active',
  ERROR: 'error',
});
