// RadioCore operator console: sign in, list stations, listen to one over WebRTC.
//
// Follows docs/protocol.md: Socket.IO namespace `/operator` for signaling (every event has an
// ack `{ok: true, ...}` or `{ok: false, error: {code, message}}`), and the `control` data
// channel for station status, floor and error messages. No framework; bundled by esbuild.

import { io } from "socket.io-client";
import { formatFrequency, formatPower, formatSMeter, formatSquelch } from "./format.js";

const OPERATOR_NAMESPACE = "/operator";
const CONTROL_CHANNEL_LABEL = "control";
const ACK_TIMEOUT_MS = 10_000;
// The SFU gathers all of its own candidates before it answers an offer.
const OFFER_TIMEOUT_MS = 20_000;
// ICE declares `failed` only after about a minute: tell the operator much sooner.
const MEDIA_CONNECT_TIMEOUT_MS = 20_000;
const MAX_SHOWN_ERRORS = 5;

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
    setText(els.access, joined.can_transmit ? "may transmit" : "listen only");

    const pc = new RTCPeerConnection({ iceServers: toRtcIceServers(joined.ice_servers) });
    mine = { boardId, pc, offerSent: false, pendingCandidates: [], connectTimer: undefined };
    session = mine;
    radiocore.pc = pc;
    setState("negotiating");
    wirePeerConnection(mine);

    pc.addTransceiver("audio", { direction: "recvonly" });
    // Ordered and reliable (the defaults), as the protocol requires.
    wireControlChannel(mine, pc.createDataChannel(CONTROL_CHANNEL_LABEL));

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
    } else if (pc.connectionState === "failed") {
      showError("ice_failed", "The audio connection to the station failed.");
    }
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
  channel.binaryType = "arraybuffer";
  channel.addEventListener("message", (event) => {
    if (session !== mine) return;
    const text =
      typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
    handleControlMessage(text);
  });
}

/** @param {string} text */
function handleControlMessage(text) {
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
      renderFloor(typeof message.holder === "string" ? message.holder : null);
      break;
    case "error":
      showError(
        typeof message.code === "string" ? message.code : "error",
        typeof message.message === "string" ? message.message : "The server refused a message.",
        typeof message.ref === "string" ? message.ref : null,
      );
      break;
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
    optional(m.power, "number")
  );
}

/**
 * @param {{ptt: boolean, freq: number, mode: string, smeter?: number | null,
 *          squelch?: boolean | null, power?: number | null}} status
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
}

/** @param {string | null} holder */
function renderFloor(holder) {
  radiocore.floor = holder;
  setText(els.floor, holder ?? "nobody");
}

function resetStationView() {
  radiocore.statusCount = 0;
  radiocore.lastStatus = null;
  radiocore.floor = null;
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
  session = null;
  window.clearTimeout(mine.connectTimer);
  mine.pc.close();
  if (radiocore.pc === mine.pc) radiocore.pc = null;
  els.audio.pause();
  els.audio.srcObject = null;
  setState("closed");
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
    setText(els.callsign, typeof body.callsign === "string" ? body.callsign : email);
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
