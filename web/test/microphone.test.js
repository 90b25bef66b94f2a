// Unit tests of opening the microphone, with stand-ins for the browser's media devices.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MIC_CONSTRAINTS,
  describeMicrophone,
  describeMicrophoneError,
  openMicrophone,
  stopStream,
} from "../src/microphone.js";

/** A MediaStream stand-in whose tracks record being stopped. */
function fakeStream(audioTracks = 1) {
  const tracks = Array.from({ length: audioTracks }, () => ({ stopped: false, stop() { this.stopped = true; } }));
  return { tracks, getAudioTracks: () => tracks, getTracks: () => tracks };
}

test("the microphone is asked for as a voice input, audio only", async () => {
  const asked = [];
  const stream = fakeStream();
  const result = await openMicrophone({
    getUserMedia: async (constraints) => {
      asked.push(constraints);
      return stream;
    },
  });
  assert.deepEqual(result, { stream });
  assert.deepEqual(asked, [
    { audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }, video: false },
  ]);
  assert.ok(Object.isFrozen(MIC_CONSTRAINTS) && Object.isFrozen(MIC_CONSTRAINTS.audio));
});

test("no microphone: the reason, in the operator's words", async () => {
  assert.deepEqual(await openMicrophone(undefined), {
    refused: "this page has no microphone access (it needs HTTPS)",
  });
  const failing = (error) => openMicrophone({ getUserMedia: () => Promise.reject(error) });
  assert.deepEqual(await failing(new DOMException("Permission denied", "NotAllowedError")), {
    refused: "access was refused",
  });
  assert.deepEqual(await failing(new DOMException("none", "NotFoundError")), {
    refused: "no microphone was found",
  });
  assert.deepEqual(await failing(new DOMException("busy", "NotReadableError")), {
    refused: "the microphone is in use or failed",
  });
  assert.equal(describeMicrophoneError(new Error("odd")), "it could not be opened (odd)");
  assert.equal(describeMicrophoneError("odd"), "it could not be opened (odd)");

  const silent = fakeStream(0);
  assert.deepEqual(await openMicrophone({ getUserMedia: async () => silent }), {
    refused: "the browser gave no audio track",
  });
});

test("stopping a stream stops every track; no stream is fine", () => {
  const stream = fakeStream(2);
  stopStream(stream);
  assert.ok(stream.tracks.every((track) => track.stopped));
  stopStream(null);
  stopStream(undefined);
});

test("the microphone line says where it stands", () => {
  assert.equal(describeMicrophone("ready"), "Microphone: ready, muted until you press PTT.");
  assert.equal(describeMicrophone("live"), "Microphone: live.");
  assert.equal(
    describeMicrophone("refused", "access was refused"),
    "Microphone: access was refused. Listening only: transmitting is off.",
  );
  assert.match(describeMicrophone("ended"), /rejoin/);
  assert.match(describeMicrophone("waiting"), /permission/);
});

test("an insecure page says why it cannot transmit and how to fix it", async () => {
  const { insecureContextProblem } = await import("../src/microphone.js");
  assert.equal(insecureContextProblem(true, "https://radio.example"), null);
  const text = insecureContextProblem(false, "http://10.0.0.5:8080");
  assert.match(text, /http:\/\/10\.0\.0\.5:8080/);
  assert.match(text, /HTTPS/);
  assert.match(text, /localhost/);
});
