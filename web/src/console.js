// RadioCore operator console: sign in, list stations, listen to one over WebRTC and, where the
// operator may, transmit (microphone + push to talk with keep-alives) and tune the rig.
//
// Follows docs/protocol.md: Socket.IO namespace `/operator` for signaling (every event has an
// ack `{ok: true, ...}` or `{ok: false, error: {code, message}}`), and the `control` data
// channel for station status, floor, control and error messages. No framework; bundled by
// esbuild.

import { io } from "socket.io-client";
import {
  PttController,
  availableModes,
  describeRanges,
  describeRelease,
  describeStationStop,
  formatKhz,
  frequencyFromInput,
  parseCapabilities,
} from "./control.js";
import { formatFrequency, formatPower, formatSMeter, formatSquelch } from "./format.js";
import { CONTROL_CHANNEL_LABEL, OPERATOR_NAMESPACE } from "./protocol.js";

const ACK_TIMEOUT_MS = 10_000;
// The SFU gathers all of its own candidates before it answers an offer.
const OFFER_TIMEOUT_MS = 20_000;
// ICE declares `failed` only after about a minute: tell the operator much sooner.
const MEDIA_CONNECT_TIMEOUT_MS = 20_000;
const MAX_SHOWN_ERRORS = 5;
/** A control the operator just changed is not overwritten by station status for this long. */
const USER_EDIT_HOLD_MS = 2000;
/** PTT changes kept in `radiocore.pttLog`. */
const PTT_LOG_LENGTH = 20;
/** The microphone as a voice input: the browser's echo canceller keeps the RX audio out. */
/** How long joining waits for the microphone before it starts listening without it. */
const MIC_WAIT_MS = 1500;
const MIC_PENDING = Symbol("microphone pending");
const MIC_CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  video: false,
};

const STATE_LABELS = {
  "signed-out": "signed out",
  "signing-in": "signing in…",
  signaling: "connecting to the server…",
  reconnecting: "reconnecting to the server…",
  ready: "ready",
  joining: "joining…",
  negotiating: "negotiating…",
  new: "negotiating…",
  connecting: "connecting…",
  connected: "connected",
  disconnected: "interrupted, retrying…",
  failed: "failed",
  closed: "closed",
};

/** An error to show: a protocol error code or a client-side one, with a readable message. */
class ConsoleError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = "ConsoleError";
    this.code = code;
  }
}

/** What tests (and curious operators in the dev tools) can read; kept up to date. */
const radiocore = {
  /** @type {RTCPeerConnection | null} */
  pc: null,
  statusCount: 0,
  /** @type {object | null} the last `status` message, as received */
  lastStatus: null,
  /** @type {{code: string, message: string, ref: string | null} | null} */
  lastError: null,
  state: "signed-out",
  /** @type {string | null} */
  boardId: null,
  /** @type {string | null} callsign of the operator holding the transmitter */
  floor: null,
  /** the last `floor` said this connection holds it */
  floorIsMine: false,
  /** @type {string | null} this operator's callsign, from sign-in */
  callsign: null,
  /** the join reply's `can_transmit` */
  canTransmit: false,
  /** the join reply's `is_owner`: the owner may take over from whoever transmits */
  isOwner: false,
  /** @type {"none" | "pending" | "ready" | "refused" | "ended"} the microphone for TX */
  mic: "none",
  /** local push-to-talk: true from the press until the release (or a server/safety release) */
  ptt: false,
  /** @type {{reason: string, by: string | null} | null} the last `ptt_released` */
  lastReleased: null,
  /** @type {{remaining_s: number, at: number} | null} the last `tx_warning` (at: Date.now()) */
  lastWarning: null,
  /** @type {{modes: string[], freq_ranges: {low: number, high: number}[]} | null} */
  capabilities: null,
  /** keep-alives sent since the page loaded */
  keepalivesSent: 0,
  /** @type {string | null} why the page itself last released PTT (hidden, blur, …) */
  lastLocalRelease: null,
  /** @type {{keyed: boolean, why: string, at: number}[]} the last PTT changes (at: ms) */
  pttLog: [],
};
window.radiocore = radiocore;

/** @param {string} id */
function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`index.html lacks #${id}`);
  return element;
}

const els = {
  whoami: byId("whoami"),
  callsign: byId("callsign"),
  logout: byId("logout"),
  errors: byId("errors"),
  errorList: byId("error-list"),
  clearErrors: byId("clear-errors"),
  login: byId("login"),
  loginForm: /** @type {HTMLFormElement} */ (byId("login-form")),
  email: /** @type {HTMLInputElement} */ (byId("email")),
  password: /** @type {HTMLInputElement} */ (byId("password")),
  loginError: byId("login-error"),
  loginSubmit: /** @type {HTMLButtonElement} */ (byId("login-submit")),
  console: byId("console"),
  boards: byId("boards"),
  boardsEmpty: byId("boards-empty"),
  station: byId("station"),
  stationName: byId("station-name"),
  txIndicator: byId("tx-indicator"),
  connState: byId("conn-state"),
  freq: byId("freq"),
  mode: byId("mode"),
  squelch: byId("squelch"),
  power: byId("power"),
  floor: byId("floor"),
  access: byId("access"),
  smeter: byId("smeter"),
  smeterBar: /** @type {HTMLMeterElement} */ (byId("smeter-bar")),
  statusCount: byId("status-count"),
  audio: /** @type {HTMLAudioElement} */ (byId("rx-audio")),
  leave: /** @type {HTMLButtonElement} */ (byId("leave")),
  rigOffline: byId("rig-offline"),
  transmit: byId("transmit"),
  ptt: /** @type {HTMLButtonElement} */ (byId("ptt")),
  pttHint: byId("ptt-hint"),
  micStatus: byId("mic-status"),
  txWarning: byId("tx-warning"),
  txNotice: byId("tx-notice"),
  tuning: /** @type {HTMLFieldSetElement} */ (byId("tuning")),
  freqForm: /** @type {HTMLFormElement} */ (byId("freq-form")),
  freqInput: /** @type {HTMLInputElement} */ (byId("freq-input")),
  freqHint: byId("freq-hint"),
  freqError: byId("freq-error"),
  modeSelect: /** @type {HTMLSelectElement} */ (byId("mode-select")),
  powerInput: /** @type {HTMLInputElement} */ (byId("power-input")),
  powerOutput: /** @type {HTMLOutputElement} */ (byId("power-output")),
};

/** @type {import("socket.io-client").Socket | null} */
let socket = null;
/** @type {Map<string, {id: string, name: string, online: boolean}>} */
const boards = new Map();
/** @type {Map<string, HTMLLIElement>} */
const boardItems = new Map();

/**
 * The one board this page is joined to, if any.
 * @typedef {{
 *   boardId: string,
 *   pc: RTCPeerConnection,
 *   offerSent: boolean,
 *   pendingCandidates: object[],
 *   connectTimer: number | undefined,
 *   canTransmit: boolean,
 *   channel: RTCDataChannel | null,
 *   mic: MediaStream | null,
 *   micTrack: MediaStreamTrack | null,
 *   ptt: PttController,
 * }} BoardSession
 * @type {BoardSession | null}
 */
let session = null;

// ---------------------------------------------------------------------------------------------
// Small DOM helpers

/**
 * Writes text only when it changed, so live regions announce changes and not every update.
 * @param {Element} element
 * @param {string} text
 */
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/** @param {string} state */
function setState(state) {
  radiocore.state = state;
  setText(els.connState, STATE_LABELS[state] ?? state);
}

/**
 * @param {string} code
 * @param {string} message
 * @param {string | null} [ref]
 */
function showError(code, message, ref = null) {
  radiocore.lastError = { code, message, ref };
  const item = document.createElement("li");
  const codeElement = document.createElement("code");
  codeElement.textContent = code;
  item.append(codeElement, `: ${message}`);
  if (ref) item.append(` (refused: ${ref})`);
  els.errorList.append(item);
  while (els.errorList.childElementCount > MAX_SHOWN_ERRORS) {
    els.errorList.firstElementChild?.remove();
  }
  els.errors.hidden = false;
}

/** @param {unknown} error */
function reportError(error) {
  if (error instanceof ConsoleError) {
    showError(error.code, error.message);
  } else if (error instanceof Error) {
    showError("client", error.message);
  } else {
    showError("client", String(error));
  }
}

function clearErrors() {
  els.errorList.replaceChildren();
  els.errors.hidden = true;
}

/** @param {string} message */
function showLoginError(message) {
  setText(els.loginError, message);
}

// ---------------------------------------------------------------------------------------------
// Signaling

/**
 * Emits a client -> server event and waits for its ack; throws `ConsoleError` on refusal.
 * @param {string} event
 * @param {object} payload
 * @param {number} [timeoutMs]
 * @returns {Promise<Record<string, any>>}
 */
async function request(event, payload, timeoutMs = ACK_TIMEOUT_MS) {
  if (socket === null) throw new ConsoleError("not_connected", "Not connected to the server.");
  let reply;
  try {
    reply = await socket.timeout(timeoutMs).emitWithAck(event, payload);
  } catch {
    throw new ConsoleError("timeout", `The server did not answer “${event}” within ${timeoutMs / 1000} s.`);
  }
  if (reply !== null && typeof reply === "object" && reply.ok === true) return reply;
  const error = reply?.error;
  throw new ConsoleError(
    typeof error?.code === "string" ? error.code : "bad_reply",
    typeof error?.message === "string" ? error.message : `Unexpected reply to “${event}”.`,
  );
}

/**
 * @param {string} token
 */
function connectSignaling(token) {
  setState("signaling");
  const sock = io(OPERATOR_NAMESPACE, { auth: { token }, transports: ["websocket"] });
  socket = sock;

  sock.on("connect", () => {
    refreshBoards();
    const wanted = radiocore.boardId;
    if (wanted !== null && session === null) {
      // Back after a lost connection: the server forgot our join, so join again.
      radiocore.boardId = null;
      void joinBoard(wanted);
    } else if (session === null) {
      setState("ready");
    }
  });

  sock.on("connect_error", (err) => {
    // `active` is false when the server refused us (bad or expired token): no retry then.
    if (!sock.active) {
      const data = /** @type {any} */ (err).data;
      const message = typeof data?.message === "string" ? data.message : err.message;
      signOut(`The server refused the connection: ${message}`);
    } else {
      setState("reconnecting");
    }
  });

  sock.on("disconnect", (reason) => {
    if (sock !== socket) return; // signed out
    joinGeneration += 1;
    closeSession();
    if (reason === "io server disconnect") {
      signOut("The server ended the session. Please sign in again.");
    } else if (reason !== "io client disconnect") {
      setState("reconnecting");
    }
  });

  sock.on("presence", (event) => {
    if (typeof event?.board_id !== "string" || typeof event?.online !== "boolean") return;
    const board = boards.get(event.board_id);
    if (board === undefined) {
      refreshBoards(); // a board we have not seen yet: fetch its name
      return;
    }
    board.online = event.online;
    renderBoard(board);
    if (event.board_id === radiocore.boardId) renderStationName(board);
  });

  sock.on("error", (event) => {
    showError(
      typeof event?.code === "string" ? event.code : "error",
      typeof event?.message === "string" ? event.message : "The server reported an error.",
    );
  });
}

async function refreshBoards() {
  try {
    const reply = await request("list_boards", {});
    const list = Array.isArray(reply.boards) ? reply.boards : [];
    boards.clear();
    for (const board of list) {
      if (typeof board?.id === "string" && typeof board?.name === "string") {
        boards.set(board.id, { id: board.id, name: board.name, online: board.online === true });
      }
    }
    renderBoards();
  } catch (err) {
    reportError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Boards

function renderBoards() {
  for (const [id, item] of boardItems) {
    if (!boards.has(id)) {
      item.remove();
      boardItems.delete(id);
    }
  }
  const sorted = [...boards.values()].sort((a, b) => a.name.localeCompare(b.name));
  for (const board of sorted) {
    renderBoard(board);
    els.boards.append(/** @type {HTMLLIElement} */ (boardItems.get(board.id)));
  }
  els.boardsEmpty.hidden = boards.size > 0;
}

/** @param {{id: string, name: string, online: boolean}} board */
function renderBoard(board) {
  let item = boardItems.get(board.id);
  if (item === undefined) {
    item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "board";
    button.dataset.boardId = board.id;
    const name = document.createElement("span");
    name.className = "board-name";
    const presence = document.createElement("span");
    presence.className = "presence";
    button.append(name, presence);
    button.addEventListener("click", () => joinBoard(board.id));
    item.append(button);
    boardItems.set(board.id, item);
  }
  const button = /** @type {HTMLButtonElement} */ (item.querySelector("button"));
  setText(/** @type {Element} */ (button.querySelector(".board-name")), board.name);
  const presence = /** @type {Element} */ (button.querySelector(".presence"));
  setText(presence, board.online ? "online" : "offline");
  presence.classList.toggle("online", board.online);
  presence.classList.toggle("offline", !board.online);
  const joined = board.id === radiocore.boardId;
  button.setAttribute("aria-pressed", String(joined));
  button.disabled = !board.online && !joined;
}

/** @param {{name: string, online: boolean}} board */
function renderStationName(board) {
  setText(els.stationName, board.online ? board.name : `${board.name} (offline)`);
}

// ---------------------------------------------------------------------------------------------
// Listening to a board: join, one peer connection, the control channel

/**
 * The ack's ICE servers as RTCIceServer dictionaries: exactly that list (never a browser or
 * library default), without null username/credential, which WebIDL would turn into "null".
 * @param {unknown} list
 * @returns {RTCIceServer[]}
 */
function toRtcIceServers(list) {
  if (!Array.isArray(list)) return [];
  return list.map((server) => {
    /** @type {RTCIceServer} */
    const rtc = { urls: server.urls };
    if (typeof server.username === "string") rtc.username = server.username;
    if (typeof server.credential === "string") rtc.credential = server.credential;
    return rtc;
  });
}

/** Counts joins, so a slow reply to an earlier one cannot act on a later one. */
let joinGeneration = 0;

/** @param {string} boardId */
async function joinBoard(boardId) {
  // Already on it (or on the way); after a failure a click retries.
  if (radiocore.boardId === boardId && radiocore.state !== "failed") return;
  const generation = ++joinGeneration;
  const current = () => generation === joinGeneration;
  await leaveBoard();
  if (!current()) return;

  const board = boards.get(boardId);
  radiocore.boardId = boardId;
  resetStationView();
  if (board !== undefined) renderStationName(board);
  for (const b of boards.values()) renderBoard(b);
  els.station.hidden = false;
  setState("joining");

  /** @type {BoardSession | null} */
  let mine = null;
  try {
    const joined = await request("join", { board_id: boardId });
    if (!current()) return; // the operator moved on meanwhile
    const canTransmit = joined.can_transmit === true;
    radiocore.canTransmit = canTransmit;
    radiocore.isOwner = joined.is_owner === true;
    setText(els.access, canTransmit ? "may transmit" : "listen only");

    // The microphone first, so the offer can carry it; but if the browser is still asking the
    // operator for permission, start listening without it and attach it when it comes.
    const micPromise = canTransmit ? openMicrophone(current) : Promise.resolve(null);
    const early = await Promise.race([
      micPromise,
      new Promise((resolve) => window.setTimeout(() => resolve(MIC_PENDING), MIC_WAIT_MS)),
    ]);
    const micPending = early === MIC_PENDING;
    if (!current()) {
      void micPromise.then(stopMicrophone);
      return;
    }
    const mic = micPending ? null : /** @type {MediaStream | null} */ (early);
    const micTrack = mic?.getAudioTracks()[0] ?? null;
    if (micPending) setText(els.micStatus, "Microphone: waiting for your permission…");

    const pc = new RTCPeerConnection({ iceServers: toRtcIceServers(joined.ice_servers) });
    /** @type {BoardSession} */
    const created = {
      boardId,
      pc,
      offerSent: false,
      pendingCandidates: [],
      connectTimer: undefined,
      canTransmit,
      channel: null,
      mic,
      micTrack,
      ptt: new PttController({
        send: (message) => sendControl(created, message),
        onChange: (keyed, why) => onPttChange(created, keyed, why),
      }),
    };
    mine = created;
    session = mine;
    radiocore.pc = pc;
    setState("negotiating");
    wirePeerConnection(mine);

    if (mic !== null && micTrack !== null) {
      // Muted until PTT: `enabled` false sends silence, so no voice leaves while released
      // (and the server forwards audio only from the floor holder anyway).
      micTrack.enabled = false;
      micTrack.addEventListener("ended", () => onMicrophoneEnded(created));
      pc.addTransceiver(micTrack, { direction: "sendrecv", streams: [mic] });
    } else if (micPending) {
      // Sends nothing until the track is attached (no renegotiation needed for that).
      const transceiver = pc.addTransceiver("audio", { direction: "sendrecv" });
      void micPromise.then((stream) => attachLateMicrophone(created, transceiver, stream));
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    // Ordered and reliable (the defaults), as the protocol requires.
    wireControlChannel(mine, pc.createDataChannel(CONTROL_CHANNEL_LABEL));
    renderTransmit();

    await pc.setLocalDescription(await pc.createOffer());
    const sdp = /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
    // Send the offer now; candidates trickle behind it as ICE finds them.
    const answerPromise = request(
      "offer",
      { board_id: boardId, type: "offer", sdp },
      OFFER_TIMEOUT_MS,
    );
    mine.offerSent = true;
    for (const candidate of mine.pendingCandidates.splice(0)) sendCandidate(mine, candidate);
    mine.connectTimer = window.setTimeout(() => {
      if (session === mine && pc.connectionState !== "connected") {
        showError(
          "no_media",
          `No audio connection after ${MEDIA_CONNECT_TIMEOUT_MS / 1000} s: the station's server ` +
            "may be unreachable from this network (a TURN server may be needed).",
        );
      }
    }, MEDIA_CONNECT_TIMEOUT_MS);

    const answer = await answerPromise;
    if (!current() || session !== mine) return;
    if (answer.type !== "answer" || typeof answer.sdp !== "string") {
      throw new ConsoleError("bad_reply", "The server's answer has no session description.");
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    // ICE now checks candidate pairs; connectionstatechange takes over from here.
    if (session === mine && pc.connectionState === "new") setState("connecting");
  } catch (err) {
    if (!current() || (mine !== null && session !== mine)) return;
    reportError(err);
    await leaveBoard({ keepPanel: true });
    setState("failed");
  }
}

/** @param {BoardSession} mine */
function wirePeerConnection(mine) {
  const { pc, boardId } = mine;

  pc.addEventListener("icecandidate", (event) => {
    // A null (or empty) candidate marks the end of gathering; the protocol has no message for it.
    if (event.candidate === null || event.candidate.candidate === "") return;
    const payload = {
      board_id: boardId,
      candidate: event.candidate.candidate,
      sdpMid: event.candidate.sdpMid,
      sdpMLineIndex: event.candidate.sdpMLineIndex,
    };
    if (mine.offerSent) sendCandidate(mine, payload);
    else mine.pendingCandidates.push(payload);
  });

  pc.addEventListener("connectionstatechange", () => {
    if (session !== mine) return;
    setState(pc.connectionState);
    if (pc.connectionState === "connected") {
      window.clearTimeout(mine.connectTimer);
    } else {
      // An interrupted link cannot carry keep-alives or voice: unkey now rather than let the
      // server's dead-man do it.
      safetyRelease(mine, "the connection to the server was interrupted", "link");
      if (pc.connectionState === "failed") {
        showError("ice_failed", "The audio connection to the station failed.");
      }
    }
    renderTransmit();
  });

  pc.addEventListener("track", (event) => {
    if (session !== mine || event.track.kind !== "audio") return;
    els.audio.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    els.audio.play().catch((err) => {
      if (err?.name === "NotAllowedError") {
        showError("autoplay", "The browser blocked playback: press play on the audio player.");
      }
    });
  });
}

/**
 * @param {BoardSession} mine
 * @param {object} payload
 */
function sendCandidate(mine, payload) {
  request("ice_candidate", payload).catch((err) => {
    if (session === mine) reportError(err);
  });
}

/**
 * @param {BoardSession} mine
 * @param {RTCDataChannel} channel
 */
function wireControlChannel(mine, channel) {
  mine.channel = channel;
  channel.binaryType = "arraybuffer";
  channel.addEventListener("message", (event) => {
    if (session !== mine) return;
    const text =
      typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
    handleControlMessage(mine, text);
  });
  channel.addEventListener("open", () => {
    if (session === mine) renderTransmit();
  });
  channel.addEventListener("close", () => {
    if (session !== mine) return;
    safetyRelease(mine, "the control channel closed", "channel_closed");
    renderTransmit();
  });
}

/**
 * Sends one control message on the session's data channel; false when it cannot go out.
 * @param {BoardSession} mine
 * @param {{type: string}} message
 */
function sendControl(mine, message) {
  const channel = mine.channel;
  if (session !== mine || channel === null || channel.readyState !== "open") return false;
  try {
    channel.send(JSON.stringify(message));
  } catch {
    return false;
  }
  if (message.type === "keepalive") radiocore.keepalivesSent += 1;
  return true;
}

/**
 * @param {BoardSession} mine
 * @param {string} text
 */
function handleControlMessage(mine, text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    console.warn("control channel: not JSON, ignored");
    return;
  }
  switch (message?.type) {
    case "status":
      if (isStatus(message)) renderStatus(message);
      else console.warn("control channel: malformed status ignored", message);
      break;
    case "heartbeat":
      break; // the station is alive; status messages already show it
    case "floor":
      renderFloor(typeof message.holder === "string" ? message.holder : null, message.you === true);
      break;
    case "capabilities": {
      const capabilities = parseCapabilities(message);
      if (capabilities === null) {
        console.warn("control channel: malformed capabilities ignored", message);
      } else {
        radiocore.capabilities = capabilities;
        renderCapabilities();
      }
      break;
    }
    case "ptt_released":
      onPttReleased(mine, message);
      break;
    case "tx_warning":
      if (Number.isSafeInteger(message.remaining_s)) onTxWarning(mine, message.remaining_s);
      break;
    case "tx_stopped": {
      const reason = typeof message.reason === "string" ? message.reason : "unknown";
      showNotice(describeStationStop(reason));
      // The station is no longer transmitting: give the floor back too.
      if (mine.ptt.keyed) mine.ptt.release(`station_${reason}`);
      break;
    }
    case "error": {
      const ref = typeof message.ref === "string" ? message.ref : null;
      showError(
        typeof message.code === "string" ? message.code : "error",
        typeof message.message === "string" ? message.message : "The server refused a message.",
        ref,
      );
      // A refused `ptt` or keep-alive (floor_busy, forbidden, rig_error, …): we are not
      // transmitting. Releasing also hands back a floor the server may still count as ours.
      if ((ref === "ptt" || ref === "keepalive") && mine.ptt.keyed) {
        mine.ptt.release(`refused_${message.code}`);
      }
      break;
    }
    default:
      console.warn("control channel: unknown message type ignored", message?.type);
  }
}

/** @param {any} m */
function isStatus(m) {
  const optional = (/** @type {unknown} */ v, /** @type {string} */ kind) =>
    v === undefined || v === null || typeof v === kind;
  return (
    typeof m.ptt === "boolean" &&
    Number.isSafeInteger(m.freq) &&
    typeof m.mode === "string" &&
    optional(m.smeter, "number") &&
    optional(m.squelch, "boolean") &&
    optional(m.power, "number") &&
    optional(m.rig_online, "boolean")
  );
}

/**
 * @param {{ptt: boolean, freq: number, mode: string, smeter?: number | null,
 *          squelch?: boolean | null, power?: number | null, rig_online?: boolean}} status
 */
function renderStatus(status) {
  radiocore.statusCount += 1;
  radiocore.lastStatus = status;
  setText(els.freq, `${formatFrequency(status.freq)} MHz`);
  setText(els.mode, status.mode);
  const sUnits = formatSMeter(status.smeter);
  setText(els.smeter, sUnits === null ? "—" : `${sUnits} (${status.smeter} dBm)`);
  els.smeterBar.value = typeof status.smeter === "number" ? status.smeter : els.smeterBar.min;
  setText(els.squelch, formatSquelch(status.squelch));
  setText(els.power, formatPower(status.power));
  setText(els.txIndicator, status.ptt ? "TX" : "RX");
  els.txIndicator.classList.toggle("tx", status.ptt);
  els.txIndicator.classList.toggle("rx", !status.ptt);
  els.txIndicator.setAttribute("aria-label", status.ptt ? "transmitting" : "receiving");
  setText(els.statusCount, String(radiocore.statusCount));
  const rigOffline = status.rig_online === false;
  els.rigOffline.hidden = !rigOffline;
  if (rigOffline && session !== null) safetyRelease(session, "the rig is offline", "rig_offline");
  syncTuning(status);
  renderTransmit();
}

/**
 * @param {string | null} holder
 * @param {boolean} [you] true when this connection holds the floor (not another tab)
 */
function renderFloor(holder, you = false) {
  radiocore.floor = holder;
  radiocore.floorIsMine = holder !== null && you;
  const mine = radiocore.floorIsMine;
  setText(els.floor, holder === null ? "nobody" : mine ? `${holder} (you)` : holder);
  renderTransmit();
}

function resetStationView() {
  radiocore.statusCount = 0;
  radiocore.lastStatus = null;
  radiocore.floor = null;
  radiocore.floorIsMine = false;
  radiocore.canTransmit = false;
  radiocore.isOwner = false;
  radiocore.mic = "none";
  radiocore.ptt = false;
  radiocore.lastReleased = null;
  radiocore.lastWarning = null;
  radiocore.capabilities = null;
  radiocore.lastLocalRelease = null;
  els.rigOffline.hidden = true;
  setText(els.micStatus, "Microphone: —");
  showNotice("");
  clearWarning();
  els.freqInput.value = "";
  setFreqError("");
  els.modeSelect.replaceChildren();
  renderCapabilities();
  renderTransmit();
  for (const element of [els.freq, els.mode, els.squelch, els.power, els.access, els.smeter]) {
    setText(element, "—");
  }
  setText(els.floor, "nobody");
  setText(els.statusCount, "0");
  setText(els.txIndicator, "RX");
  els.txIndicator.classList.replace("tx", "rx");
  els.txIndicator.setAttribute("aria-label", "receiving");
  els.smeterBar.value = els.smeterBar.min;
}

/** Closes the peer connection of the current board (if any), without telling the server. */
function closeSession() {
  const mine = session;
  if (mine === null) return null;
  // Unkey while the channel can still say so, then mute and let go of the microphone.
  mine.ptt.release("left");
  session = null;
  stopMicrophone(mine.mic);
  window.clearTimeout(mine.connectTimer);
  mine.pc.close();
  if (radiocore.pc === mine.pc) radiocore.pc = null;
  els.audio.pause();
  els.audio.srcObject = null;
  setState("closed");
  renderTransmit();
  return mine;
}

/**
 * Leaves the current board: closes the peer connection and tells the server.
 * @param {{keepPanel?: boolean}} [options]
 */
async function leaveBoard({ keepPanel = false } = {}) {
  const boardId = radiocore.boardId;
  closeSession();
  if (!keepPanel) {
    radiocore.boardId = null;
    els.station.hidden = true;
    for (const b of boards.values()) renderBoard(b);
    if (socket?.connected) setState("ready");
  }
  if (boardId !== null && socket?.connected) {
    try {
      await request("leave", { board_id: boardId });
    } catch (err) {
      // not_joined just means the join itself never completed
      if (!(err instanceof ConsoleError && err.code === "not_joined")) reportError(err);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Transmitting: microphone, push to talk, keep-alives, floor, tuning

/**
 * The microphone as a voice input, or null (with the reason shown) when there is none.
 * @param {() => boolean} isCurrent false once the join that asked is over (then it shows nothing)
 * @returns {Promise<MediaStream | null>}
 */
async function openMicrophone(isCurrent) {
  radiocore.mic = "pending";
  setText(els.micStatus, "Microphone: asking the browser…");
  if (!navigator.mediaDevices?.getUserMedia) {
    // Browsers offer getUserMedia only in a secure context (HTTPS or localhost).
    micUnavailable("this page has no microphone access (it needs HTTPS)");
    return null;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
    if (!isCurrent()) return stream; // the caller stops it
    if (stream.getAudioTracks().length === 0) {
      stopMicrophone(stream);
      micUnavailable("the browser gave no audio track");
      return null;
    }
    radiocore.mic = "ready";
    setText(els.micStatus, "Microphone: ready, muted until you press PTT.");
    return stream;
  } catch (err) {
    if (!isCurrent()) return null;
    const name = err instanceof Error ? err.name : "";
    const why =
      name === "NotAllowedError"
        ? "access was refused"
        : name === "NotFoundError"
          ? "no microphone was found"
          : name === "NotReadableError"
            ? "the microphone is in use or failed"
            : `it could not be opened (${err instanceof Error ? err.message || name : err})`;
    micUnavailable(why);
    return null;
  }
}

/**
 * The microphone the operator allowed after listening had started: muted, onto the sender.
 * @param {BoardSession} mine
 * @param {RTCRtpTransceiver} transceiver
 * @param {MediaStream | null} stream
 */
async function attachLateMicrophone(mine, transceiver, stream) {
  const track = stream?.getAudioTracks()[0] ?? null;
  if (session !== mine || track === null) {
    if (session !== mine) stopMicrophone(stream);
    renderTransmit(); // refused: openMicrophone said so; the sender stays without a track
    return;
  }
  track.enabled = false;
  try {
    await transceiver.sender.replaceTrack(track);
  } catch (err) {
    stopMicrophone(stream);
    if (session === mine) micUnavailable(`it could not be attached (${err})`);
    return;
  }
  if (session !== mine) {
    stopMicrophone(stream);
    return;
  }
  mine.mic = stream;
  mine.micTrack = track;
  track.addEventListener("ended", () => onMicrophoneEnded(mine));
  renderTransmit();
}

/** @param {string} why */
function micUnavailable(why) {
  radiocore.mic = "refused";
  setText(els.micStatus, `Microphone: ${why}. Listening only: transmitting is off.`);
}

/** @param {MediaStream | null} stream */
function stopMicrophone(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}

/** @param {BoardSession} mine */
function onMicrophoneEnded(mine) {
  if (session !== mine) return;
  mine.micTrack = null;
  safetyRelease(mine, "the microphone stopped", "mic_ended");
  radiocore.mic = "ended";
  setText(els.micStatus, "Microphone: disconnected. Transmitting is off; rejoin to use it.");
  renderTransmit();
}

/** How PTT was pressed: "pointer", "key", or null when not pressed by the operator. */
/** @type {"pointer" | "key" | null} */
let pttSource = null;

/**
 * @param {BoardSession} mine
 * @param {boolean} keyed
 * @param {string} why
 */
function onPttChange(mine, keyed, why) {
  // The voice flows only while keyed: enabled once `ptt` true went out, disabled on release
  // before `ptt` false goes out (and the server forwards audio only from the floor holder).
  if (mine.micTrack !== null) mine.micTrack.enabled = keyed;
  if (session !== mine) return;
  if (mine.micTrack !== null) {
    setText(
      els.micStatus,
      keyed ? "Microphone: live." : "Microphone: ready, muted until you press PTT.",
    );
  }
  radiocore.ptt = keyed;
  radiocore.pttLog.push({ keyed, why, at: Math.round(performance.now()) });
  if (radiocore.pttLog.length > PTT_LOG_LENGTH) radiocore.pttLog.shift();
  if (keyed) {
    showNotice("");
    radiocore.lastLocalRelease = null;
  } else {
    pttSource = null;
    clearWarning();
    if (why === "keepalive_failed") {
      radiocore.lastLocalRelease = why;
      showNotice("PTT released: a keep-alive could not be sent.");
    }
  }
  renderFloor(radiocore.floor);
}

/**
 * Unkeys (telling the server if the channel is still open) because the page can no longer
 * be sure the operator is there or the link works; says so.
 * @param {BoardSession} mine
 * @param {string} what
 * @param {string} code
 */
function safetyRelease(mine, what, code) {
  if (!mine.ptt.keyed) return;
  mine.ptt.release(code);
  radiocore.lastLocalRelease = code;
  showNotice(`PTT released: ${what}.`);
}

/**
 * @param {BoardSession} mine
 * @param {any} message
 */
function onPttReleased(mine, message) {
  const reason = typeof message.reason === "string" ? message.reason : "unknown";
  const by = typeof message.by === "string" ? message.by : null;
  radiocore.lastReleased = { reason, by };
  // The server has already released the floor: nothing to send, and the operator must press
  // again (an auto-repeating space bar does not re-key: repeats are ignored).
  mine.ptt.drop(`server_${reason}`);
  showNotice(describeRelease(reason, by));
}

/** @type {number | undefined} */
let warningTimer;

/**
 * @param {BoardSession} mine
 * @param {number} remaining
 */
function onTxWarning(mine, remaining) {
  radiocore.lastWarning = { remaining_s: remaining, at: Date.now() };
  if (!mine.ptt.keyed) return;
  showNotice(`TX time-out in ${remaining} s: finish the transmission (key again to go on).`);
  const deadline = Date.now() + remaining * 1000;
  const tick = () => {
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    setText(els.txWarning, `TX time-out in ${left} s`);
    if (left === 0) window.clearInterval(warningTimer);
  };
  window.clearInterval(warningTimer);
  tick();
  els.txWarning.hidden = false;
  warningTimer = window.setInterval(tick, 250);
}

function clearWarning() {
  window.clearInterval(warningTimer);
  warningTimer = undefined;
  els.txWarning.hidden = true;
  setText(els.txWarning, "");
}

/** @param {string} text an announcement about transmitting (assertive live region) */
function showNotice(text) {
  setText(els.txNotice, text);
}

/** Enables, labels and describes the PTT button and the tuning controls from the state. */
function renderTransmit() {
  const mine = session;
  const canTransmit = mine !== null && mine.canTransmit;
  els.transmit.hidden = !canTransmit;
  const keyed = mine !== null && mine.ptt.keyed;
  const channelOpen = mine?.channel?.readyState === "open";
  const rigOffline = radiocore.lastStatus?.rig_online === false;
  const holder = radiocore.floor;
  const otherHolder = holder !== null && !keyed && !radiocore.floorIsMine;

  /** @type {string} */
  let hint;
  let usable = false;
  if (!canTransmit) hint = "Listening only.";
  else if (mine.micTrack === null && radiocore.mic === "pending") {
    hint = "Waiting for permission to use the microphone…";
  } else if (mine.micTrack === null) hint = "No microphone: transmitting is off.";
  else if (!channelOpen) hint = "Waiting for the connection to the station…";
  else if (rigOffline) hint = "The rig is offline.";
  else if (otherHolder && !radiocore.isOwner) hint = `${holder} is transmitting.`;
  else {
    usable = true;
    if (keyed) hint = "ON AIR: release the button (or the space bar) to stop.";
    else if (otherHolder) hint = `${holder} is transmitting; as the owner you can take over.`;
    else hint = "Hold the button, or hold the space bar, to talk.";
  }
  // Never disable under a held pointer without unkeying first (every path above that makes
  // PTT unusable releases it); keep the button usable while keyed.
  els.ptt.disabled = !usable && !keyed;
  els.ptt.setAttribute("aria-pressed", String(keyed));
  setText(els.ptt, keyed ? "ON AIR" : "Push to talk");
  setText(els.pttHint, hint);
  els.tuning.disabled = !canTransmit || !channelOpen || rigOffline;
}

function renderCapabilities() {
  const capabilities = radiocore.capabilities;
  const modes = availableModes(capabilities);
  const current = els.modeSelect.value || radiocore.lastStatus?.mode;
  const options = modes.map((mode) => new Option(mode, mode));
  els.modeSelect.replaceChildren(...options);
  if (current) setSelectedMode(current);
  const ranges = capabilities?.freq_ranges ?? [];
  setText(
    els.freqHint,
    ranges.length > 0
      ? `The station accepts ${describeRanges(ranges)}.`
      : "1 Hz steps, e.g. 14205.000",
  );
}

/** @param {string} mode selects it, adding it when the list lacks it (the rig is in it) */
function setSelectedMode(mode) {
  if (![...els.modeSelect.options].some((o) => o.value === mode)) {
    els.modeSelect.append(new Option(mode, mode));
  }
  els.modeSelect.value = mode;
}

/** When the operator last changed each control (status updates leave it alone meanwhile). */
const editedAt = new WeakMap();
let powerDragging = false;

/** @param {Element} element */
function recentlyEdited(element) {
  return Date.now() - (editedAt.get(element) ?? 0) < USER_EDIT_HOLD_MS;
}

/** @param {{freq: number, mode: string, power?: number | null}} status */
function syncTuning(status) {
  if (document.activeElement !== els.freqInput && !recentlyEdited(els.freqInput)) {
    els.freqInput.value = formatKhz(status.freq);
  }
  if (!recentlyEdited(els.modeSelect)) setSelectedMode(status.mode);
  if (typeof status.power === "number" && !powerDragging && !recentlyEdited(els.powerInput)) {
    els.powerInput.value = String(status.power);
    setText(els.powerOutput, formatPower(status.power));
  }
}

/** @param {string} message */
function setFreqError(message) {
  setText(els.freqError, message);
  if (message) els.freqInput.setAttribute("aria-invalid", "true");
  else els.freqInput.removeAttribute("aria-invalid");
}

/** @param {{type: string, value: number | string}} message */
function sendTuning(message) {
  const mine = session;
  if (mine === null || !mine.canTransmit) return;
  if (!sendControl(mine, message)) {
    showError("not_connected", `Not connected to the station: “${message.type}” was not sent.`);
  }
}

/** @param {"pointer" | "key"} source */
function pressPtt(source) {
  const mine = session;
  if (mine === null || els.ptt.disabled || mine.ptt.keyed) return;
  if (mine.micTrack === null) return;
  pttSource = source;
  // The mic is enabled in onPttChange before `ptt` true is sent.
  if (!mine.ptt.press()) pttSource = null;
}

/**
 * @param {"pointer" | "key"} source
 * @param {string} how the event that released it
 */
function releasePtt(source, how) {
  if (pttSource !== source) return;
  pttSource = null;
  session?.ptt.release(how);
}

/** @param {EventTarget | null} target */
function isTypingTarget(target) {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || target.closest("input, textarea, select") !== null;
}

/** @param {KeyboardEvent} event */
function isPttKey(event) {
  return (
    event.code === "Space" &&
    !event.ctrlKey &&
    !event.altKey &&
    !event.metaKey &&
    !isTypingTarget(event.target)
  );
}

els.ptt.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault(); // no text selection, no focus juggling, no emulated mouse events
  pressPtt("pointer");
});
for (const type of ["pointerup", "pointercancel", "pointerleave"]) {
  els.ptt.addEventListener(type, () => releasePtt("pointer", type));
}
// A release anywhere counts (the pointer may come up outside the window's content).
window.addEventListener("pointerup", () => releasePtt("pointer", "pointerup"));
window.addEventListener("pointercancel", () => releasePtt("pointer", "pointercancel"));
els.ptt.addEventListener("contextmenu", (event) => event.preventDefault()); // long touch

window.addEventListener("keydown", (event) => {
  if (!isPttKey(event) || session === null || !session.canTransmit) return;
  event.preventDefault(); // no scrolling, no activation of a focused button
  if (event.repeat) return; // auto-repeat: never re-keys after a server release
  pressPtt("key");
});
window.addEventListener("keyup", (event) => {
  if (event.code !== "Space" || pttSource !== "key") return;
  event.preventDefault();
  releasePtt("key", "keyup");
});

// The operator may no longer be at the controls: unkey.
document.addEventListener("visibilitychange", () => {
  if (document.hidden && session !== null) safetyRelease(session, "the page was hidden", "hidden");
});
window.addEventListener("blur", () => {
  if (session !== null) safetyRelease(session, "the window lost focus", "blur");
});

els.freqForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const result = frequencyFromInput(els.freqInput.value, radiocore.capabilities);
  if ("error" in result) {
    setFreqError(result.error);
    return;
  }
  setFreqError("");
  editedAt.delete(els.freqInput);
  sendTuning({ type: "freq", value: result.hz });
});
els.freqInput.addEventListener("input", () => {
  editedAt.set(els.freqInput, Date.now());
  if (els.freqError.textContent) setFreqError("");
});
els.modeSelect.addEventListener("change", () => {
  editedAt.set(els.modeSelect, Date.now());
  sendTuning({ type: "mode", value: els.modeSelect.value });
});
els.powerInput.addEventListener("pointerdown", () => {
  powerDragging = true;
});
window.addEventListener("pointerup", () => {
  powerDragging = false;
});
els.powerInput.addEventListener("input", () => {
  editedAt.set(els.powerInput, Date.now());
  setText(els.powerOutput, formatPower(Number(els.powerInput.value)));
});
els.powerInput.addEventListener("change", () => {
  editedAt.set(els.powerInput, Date.now());
  sendTuning({ type: "power", value: Number(els.powerInput.value) });
});

// ---------------------------------------------------------------------------------------------
// Signing in and out

/** @param {SubmitEvent} event */
async function onLoginSubmit(event) {
  event.preventDefault();
  const email = els.email.value.trim();
  const password = els.password.value;
  if (email === "" || password === "") {
    showLoginError("Enter your email and password.");
    return;
  }
  showLoginError("");
  els.loginSubmit.disabled = true;
  setState("signing-in");
  try {
    const response = await fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ email, password }),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok || typeof body?.token !== "string") {
      const message =
        typeof body?.error?.message === "string"
          ? body.error.message
          : `Sign-in failed (HTTP ${response.status}).`;
      const code = typeof body?.error?.code === "string" ? body.error.code : "login_failed";
      radiocore.lastError = { code, message, ref: null };
      showLoginError(message);
      setState("signed-out");
      return;
    }
    els.password.value = "";
    radiocore.callsign = typeof body.callsign === "string" ? body.callsign : null;
    setText(els.callsign, radiocore.callsign ?? email);
    els.whoami.hidden = false;
    els.login.hidden = true;
    els.console.hidden = false;
    connectSignaling(body.token);
  } catch (err) {
    showLoginError(`Cannot reach the server: ${err instanceof Error ? err.message : err}`);
    setState("signed-out");
  } finally {
    els.loginSubmit.disabled = false;
  }
}

/** @param {string} [message] shown on the sign-in form */
function signOut(message = "") {
  joinGeneration += 1;
  closeSession();
  radiocore.boardId = null;
  els.station.hidden = true;
  const sock = socket;
  socket = null;
  sock?.disconnect(); // the server forgets our joins with the connection
  boards.clear();
  renderBoards();
  radiocore.callsign = null;
  els.console.hidden = true;
  els.whoami.hidden = true;
  els.login.hidden = false;
  showLoginError(message);
  setState("signed-out");
  els.email.focus();
}

els.loginForm.addEventListener("submit", onLoginSubmit);
els.logout.addEventListener("click", () => signOut());
els.leave.addEventListener("click", () => {
  void leaveBoard();
});
els.clearErrors.addEventListener("click", clearErrors);
window.addEventListener("pagehide", () => {
  closeSession();
  socket?.disconnect();
});
setState("signed-out");
