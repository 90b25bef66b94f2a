// A session with one board (docs/protocol.md, namespace `/operator`): `join`, the microphone,
// one RTCPeerConnection (receive the station's audio, send the operator's voice), the offer and
// answer, trickled ICE candidates, and the `control` data channel whose messages go to one
// handler per type. It owns all of these and `close()` lets go of every one.

import { ConsoleError } from "./errors.js";
import { dispatchControlMessage } from "./messages.js";
import { MIC_WAIT_MS, openMicrophone, stopStream } from "./microphone.js";
import { CONTROL_CHANNEL_LABEL } from "./protocol.js";
import { PttController } from "./ptt.js";

// The SFU gathers all of its own candidates before it answers an offer.
export const OFFER_TIMEOUT_MS = 20_000;
// ICE declares `failed` only after about a minute: tell the operator much sooner.
export const MEDIA_CONNECT_TIMEOUT_MS = 10_000;

const MIC_PENDING = Symbol("microphone pending");

/**
 * The ack's ICE servers as RTCIceServer dictionaries: exactly that list (never a browser or
 * library default), without null username/credential, which WebIDL would turn into "null".
 * @param {unknown} list
 * @returns {RTCIceServer[]}
 */
export function toRtcIceServers(list) {
  if (!Array.isArray(list)) return [];
  return list.map((server) => {
    /** @type {RTCIceServer} */
    const rtc = { urls: server?.urls };
    if (typeof server?.username === "string") rtc.username = server.username;
    if (typeof server?.credential === "string") rtc.credential = server.credential;
    return rtc;
  });
}

/**
 * The RTCPeerConnection configuration for a join reply: its ICE servers (the TURN entry carries
 * credentials issued for this operator), relay-only when the server or the operator asks for
 * it, and one transport for audio and data (one TURN allocation, not two).
 * @param {any} joined the `join` ack
 * @param {boolean} forceRelay the operator chose relay-only
 * @returns {RTCConfiguration}
 */
export function rtcConfiguration(joined, forceRelay) {
  const relay = forceRelay || joined?.ice_transport_policy === "relay";
  return {
    iceServers: toRtcIceServers(joined?.ice_servers),
    iceTransportPolicy: relay ? "relay" : "all",
    bundlePolicy: "max-bundle",
  };
}

/**
 * Why a peer connection found no network path, in the operator's words, from what ICE
 * gathered: without a relay candidate the TURN relay was not reached (or none is offered).
 * @param {RTCPeerConnection} pc
 * @param {any} joined the `join` ack (its ICE servers)
 * @returns {Promise<string>}
 */
export async function whyNoPath(pc, joined) {
  const offersRelay = toRtcIceServers(joined?.ice_servers).some((server) =>
    (Array.isArray(server.urls) ? server.urls : [server.urls]).some(
      (url) => typeof url === "string" && /^turns?:/.test(url),
    ),
  );
  let gotRelay = false;
  try {
    const stats = await pc.getStats();
    stats.forEach((report) => {
      if (report.type === "local-candidate" && report.candidateType === "relay") gotRelay = true;
    });
  } catch {
    // no statistics: judge by the configuration alone
  }
  return describeNoPath(offersRelay, gotRelay);
}

/**
 * @param {boolean} offersRelay the server gave this operator a TURN relay
 * @param {boolean} gotRelay the browser obtained a relayed address from it
 */
export function describeNoPath(offersRelay, gotRelay) {
  const after = `No audio connection after ${MEDIA_CONNECT_TIMEOUT_MS / 1000} s`;
  if (!offersRelay) {
    return `${after}: this network seems to block the direct (UDP) path to the station's server, and the server offers no TURN relay`;
  }
  if (!gotRelay) {
    return `${after}: the direct path is blocked and the TURN relay could not be reached from this network (it may block UDP and TCP to the relay)`;
  }
  return `${after}: neither the direct path nor the TURN relay reached the station's server`;
}

/**
 * What a session tells the page. None of these runs once the session is closed, except `ptt`
 * for the release that closing itself makes.
 * @typedef {{
 *   access: (access: {canTransmit: boolean, isOwner: boolean}) => void,
 *   state: (state: "negotiating" | "connecting") => void,
 *   connection: (state: RTCPeerConnectionState) => void,
 *   microphone: (line: "asking" | "waiting" | "ready" | "refused" | "ended", why?: string) => void,
 *   changed: () => void,
 *   channel: (open: boolean) => void,
 *   track: (stream: MediaStream) => void,
 *   ptt: (keyed: boolean, why: string) => void,
 *   sent: (message: {type: string}) => void,
 *   problem: (error: unknown) => void,
 *   noPath: (why: string) => void,
 *   messages: import("./messages.js").ControlHandlers,
 * }} SessionEvents
 */

/**
 * @typedef {{request: (event: string, payload: object, timeoutMs?: number) =>
 *   Promise<Record<string, any>>}} Requester
 */

export class BoardSession {
  /**
   * @param {{
   *   boardId: string,
   *   signaling: Requester,
   *   events: SessionEvents,
   *   mediaDevices?: MediaDevices,
   *   micWaitMs?: number,
   *   forceRelay?: boolean,
   * }} options
   */
  constructor({
    boardId,
    signaling,
    events,
    mediaDevices,
    micWaitMs = MIC_WAIT_MS,
    forceRelay = false,
  }) {
    this.boardId = boardId;
    /** only through the TURN relay, whatever the server's policy */
    this.forceRelay = forceRelay;
    this._signaling = signaling;
    this._events = events;
    this._mediaDevices = mediaDevices;
    this._micWaitMs = micWaitMs;
    this.closed = false;
    /** the join reply's `can_transmit` (false until it came) */
    this.canTransmit = false;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {RTCDataChannel | null} */
    this.channel = null;
    /** @type {MediaStream | null} */
    this._mic = null;
    /** @type {MediaStreamTrack | null} the microphone on the sender; muted unless keyed */
    this.micTrack = null;
    this._offerSent = false;
    /** @type {object[]} candidates found before the offer went out */
    this._pendingCandidates = [];
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._connectTimer = undefined;
    this.ptt = new PttController({
      send: (message) => this.send(/** @type {{type: string}} */ (message)),
      onChange: (keyed, why) => this._onPttChange(keyed, why),
    });
  }

  get channelOpen() {
    return this.channel?.readyState === "open";
  }

  /**
   * Joins the board and negotiates the peer connection. Throws (`ConsoleError` and others)
   * when that fails while the session is still open; returns quietly once it was closed.
   */
  async start() {
    const events = this._events;
    const joined = await this._signaling.request("join", { board_id: this.boardId });
    if (this.closed) return; // the operator moved on meanwhile
    this.canTransmit = joined.can_transmit === true;
    events.access({ canTransmit: this.canTransmit, isOwner: joined.is_owner === true });

    // The microphone first, so the offer can carry it; but if the browser is still asking the
    // operator for permission, start listening without it and attach it when it comes.
    const micPromise = this.canTransmit ? this._openMicrophone() : Promise.resolve(null);
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let micTimer;
    const early = await Promise.race([
      micPromise,
      new Promise((resolve) => {
        micTimer = setTimeout(() => resolve(MIC_PENDING), this._micWaitMs);
      }),
    ]);
    clearTimeout(micTimer);
    if (this.closed) {
      void micPromise.then(stopStream);
      return;
    }
    const micPending = early === MIC_PENDING;
    const mic = micPending ? null : /** @type {MediaStream | null} */ (early);
    const micTrack = mic?.getAudioTracks()[0] ?? null;
    if (micPending) events.microphone("waiting");

    const pc = new RTCPeerConnection(rtcConfiguration(joined, this.forceRelay));
    this.pc = pc;
    events.state("negotiating");
    this._wirePeerConnection(pc);

    if (mic !== null && micTrack !== null) {
      // Muted until PTT: `enabled` false sends silence, so no voice leaves while released
      // (and the server forwards audio only from the floor holder anyway).
      micTrack.enabled = false;
      this._mic = mic;
      this.micTrack = micTrack;
      micTrack.addEventListener("ended", () => this._onMicrophoneEnded());
      pc.addTransceiver(micTrack, { direction: "sendrecv", streams: [mic] });
    } else if (micPending) {
      // Sends nothing until the track is attached (no renegotiation needed for that).
      const transceiver = pc.addTransceiver("audio", { direction: "sendrecv" });
      void micPromise.then((stream) => this._attachLateMicrophone(transceiver, stream));
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    // Ordered and reliable (the defaults), as the protocol requires.
    this._wireControlChannel(pc.createDataChannel(CONTROL_CHANNEL_LABEL));
    events.changed();

    await pc.setLocalDescription(await pc.createOffer());
    const sdp = /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
    // Send the offer now; candidates trickle behind it as ICE finds them.
    const answerPromise = this._signaling.request(
      "offer",
      { board_id: this.boardId, type: "offer", sdp },
      OFFER_TIMEOUT_MS,
    );
    this._offerSent = true;
    for (const candidate of this._pendingCandidates.splice(0)) this._sendCandidate(candidate);
    this._connectTimer = setTimeout(() => {
      if (this.closed || pc.connectionState === "connected") return;
      void whyNoPath(pc, joined).then((why) => {
        if (!this.closed && pc.connectionState !== "connected") events.noPath(why);
      });
    }, MEDIA_CONNECT_TIMEOUT_MS);

    const answer = await answerPromise;
    if (this.closed) return;
    if (answer.type !== "answer" || typeof answer.sdp !== "string") {
      throw new ConsoleError("bad_reply", "The server's answer has no session description.");
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    // ICE now checks candidate pairs; `connection` events take over from here.
    if (!this.closed && pc.connectionState === "new") events.state("connecting");
  }

  /**
   * Sends one control message on the data channel; false when it cannot go out.
   * @param {{type: string}} message
   */
  send(message) {
    const channel = this.channel;
    if (this.closed || channel === null || channel.readyState !== "open") return false;
    try {
      channel.send(JSON.stringify(message));
    } catch {
      return false;
    }
    this._events.sent(message);
    return true;
  }

  /** Unkeys (while the channel can still say so), then closes everything, without telling the
   * server (`leave` is the page's to send). */
  close() {
    if (this.closed) return;
    this.ptt.release("left");
    this.closed = true;
    stopStream(this._mic);
    clearTimeout(this._connectTimer);
    this.pc?.close();
  }

  /** @returns {Promise<MediaStream | null>} the microphone, or null (said why) */
  async _openMicrophone() {
    this._events.microphone("asking");
    const result = await openMicrophone(this._mediaDevices);
    if ("stream" in result) {
      if (!this.closed) this._events.microphone("ready");
      return result.stream; // once closed, whoever awaits it stops it
    }
    if (!this.closed) this._events.microphone("refused", result.refused);
    return null;
  }

  /**
   * The microphone the operator allowed after listening had started: muted, onto the sender.
   * @param {RTCRtpTransceiver} transceiver
   * @param {MediaStream | null} stream
   */
  async _attachLateMicrophone(transceiver, stream) {
    const track = stream?.getAudioTracks()[0] ?? null;
    if (this.closed) {
      stopStream(stream);
      return;
    }
    if (track === null) {
      this._events.changed(); // refused: already said; the sender stays without a track
      return;
    }
    track.enabled = false;
    try {
      await transceiver.sender.replaceTrack(track);
    } catch (err) {
      stopStream(stream);
      if (!this.closed) this._events.microphone("refused", `it could not be attached (${err})`);
      return;
    }
    if (this.closed) {
      stopStream(stream);
      return;
    }
    this._mic = stream;
    this.micTrack = track;
    track.addEventListener("ended", () => this._onMicrophoneEnded());
    this._events.changed();
  }

  _onMicrophoneEnded() {
    if (this.closed) return;
    this.micTrack = null;
    this._events.microphone("ended");
  }

  /**
   * @param {boolean} keyed
   * @param {string} why
   */
  _onPttChange(keyed, why) {
    // The voice flows only while keyed: enabled once `ptt` true went out, disabled on release
    // before `ptt` false goes out (and the server forwards audio only from the floor holder).
    if (this.micTrack !== null) this.micTrack.enabled = keyed;
    if (!this.closed) this._events.ptt(keyed, why);
  }

  /** @param {RTCPeerConnection} pc */
  _wirePeerConnection(pc) {
    pc.addEventListener("icecandidate", (event) => {
      // A null (or empty) candidate ends gathering; the protocol has no message for it.
      if (event.candidate === null || event.candidate.candidate === "") return;
      const payload = {
        board_id: this.boardId,
        candidate: event.candidate.candidate,
        sdpMid: event.candidate.sdpMid,
        sdpMLineIndex: event.candidate.sdpMLineIndex,
      };
      if (this._offerSent) this._sendCandidate(payload);
      else this._pendingCandidates.push(payload);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (this.closed) return;
      if (pc.connectionState === "connected") clearTimeout(this._connectTimer);
      this._events.connection(pc.connectionState);
    });
    pc.addEventListener("track", (event) => {
      if (this.closed || event.track.kind !== "audio") return;
      this._events.track(event.streams[0] ?? new MediaStream([event.track]));
    });
  }

  /** @param {object} payload */
  _sendCandidate(payload) {
    this._signaling.request("ice_candidate", payload).catch((err) => {
      if (!this.closed) this._events.problem(err);
    });
  }

  /** @param {RTCDataChannel} channel */
  _wireControlChannel(channel) {
    this.channel = channel;
    channel.binaryType = "arraybuffer";
    channel.addEventListener("message", (event) => {
      if (this.closed) return;
      const text =
        typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
      dispatchControlMessage(text, this._events.messages);
    });
    channel.addEventListener("open", () => {
      if (!this.closed) this._events.channel(true);
    });
    channel.addEventListener("close", () => {
      if (!this.closed) this._events.channel(false);
    });
  }
}
