// RadioCore operator console: sign in, list stations, listen to one over WebRTC and, where the
// operator may, transmit (microphone + push to talk with keep-alives) and tune the rig.
//
// This module owns the console's state and wires the others together: `signaling` (Socket.IO,
// `/operator`), `session` (join, peer connection, control channel), `microphone`, `ptt`,
// `tuning`, `view` (the DOM) and `debug` (the read-only `window.radiocore`); and the pages of
// station sharing over the REST API (`api`): `router` (which page the URL names, the sticker's
// pairing link), `register`, `pairing`, `mystations`, `publicstations`, `bookings`. It follows
// docs/protocol.md. No framework; bundled by esbuild.

import { ApiClient } from "./api.js";
import { BookingsPage } from "./bookings.js";
import { createDebugView, exposeDebugView } from "./debug.js";
import { DialControl, findDialElements } from "./dial.js";
import { ConsoleError, errorFields } from "./errors.js";
import { ListenPanel } from "./listen.js";
import { Credentials, signIn } from "./login.js";
import { describeMicrophone } from "./microphone.js";
import { ERROR_CODES } from "./protocol.js";
import {
  PttInput,
  describeRelease,
  describeStationStop,
  transmitControls,
} from "./ptt.js";
import { MyStationsPage } from "./mystations.js";
import { showView } from "./pages.js";
import { PairPage } from "./pairing.js";
import { PublicStationsPage } from "./publicstations.js";
import { MediaRecovery } from "./recovery.js";
import { RegisterPage } from "./register.js";
import { RosterPanel } from "./roster.js";
import { Router, resolveView } from "./router.js";
import { BoardSession } from "./session.js";
import { SignalingClient } from "./signaling.js";
import { ThemeToggle } from "./theme.js";
import { TuningControls } from "./tuning.js";
import { TransmitPanel } from "./txpanel.js";
import { ConsoleView } from "./view.js";

/** PTT changes kept for the debug view's `pttLog`. */
const PTT_LOG_LENGTH = 20;

/** The microphone state each line of the transmit panel stands for. */
const MIC_STATE_OF_LINE = Object.freeze({
  asking: "pending",
  waiting: "pending",
  ready: "ready",
  refused: "refused",
  ended: "ended",
});

// ---------------------------------------------------------------------------------------------
// State: the page's, and the joined station's (new for each join)

const page = {
  /** the page's state, or its peer connection's (`view.stateLabel` words it) */
  state: "signed-out",
  /** @type {string | null} this operator's callsign, from sign-in */
  callsign: null,
  /** @type {string | null} the board joined (or being joined), kept across a lost connection */
  boardId: null,
  /** @type {Readonly<{code: string, message: string, ref: string | null}> | null} */
  lastError: null,
  /** keep-alives sent since the page loaded */
  keepalivesSent: 0,
  /** @type {Readonly<{keyed: boolean, why: string, at: number}>[]} the last PTT changes (at: ms) */
  pttLog: [],
};

function newStation() {
  return {
    statusCount: 0,
    /** @type {import("./messages.js").StatusMessage | null} the last `status`, as received */
    lastStatus: null,
    /** @type {string | null} callsign of the operator holding the transmitter */
    floor: null,
    /** the last `floor` said this connection holds it */
    floorIsMine: false,
    /** the join reply's `can_transmit` */
    canTransmit: false,
    /** the join reply's `is_owner`: the owner may take over from whoever transmits */
    isOwner: false,
    /** @type {import("./microphone.js").MicrophoneState} the microphone for TX */
    mic: /** @type {import("./microphone.js").MicrophoneState} */ ("none"),
    /** local push-to-talk: true from the press until the release (or a server/safety release) */
    ptt: false,
    /** @type {Readonly<{reason: string, by: string | null}> | null} the last `ptt_released` */
    lastReleased: null,
    /** @type {Readonly<{remaining_s: number, at: number}> | null} the last `tx_warning`
     *  (at: Date.now()) */
    lastWarning: null,
    /** @type {import("./tuning.js").Capabilities | null} */
    capabilities: null,
    /** @type {string | null} why the page itself last released PTT (hidden, blur, …) */
    lastLocalRelease: null,
  };
}

let station = newStation();
/** @type {SignalingClient | null} while signed in */
let signaling = null;
/** @type {Credentials | null} the sign-in's tokens (in memory only), while signed in */
let credentials = null;
/** @type {BoardSession | null} the one board session that is not closed, if any */
let session = null;
/** @type {Map<string, {id: string, name: string, online: boolean}>} */
const boards = new Map();
/** Counts joins (and what ends them), so a slow leave cannot let an older join go on. */
let joinGeneration = 0;

/** Joins the current station again when its audio connection is lost or never comes up. */
const recovery = new MediaRecovery({
  rejoin: () => {
    if (page.boardId !== null) void joinBoard(page.boardId, { again: true });
  },
  notice: (text) => {
    view.showNotice(text);
    listen.recovering(text);
  },
});

const view = new ConsoleView(document, { chooseBoard: (boardId) => void joinBoard(boardId) });
// the station's audio as heard and seen (volume, mute, RX meter, waterfall, link); the theme
const listen = new ListenPanel(window);
new ThemeToggle(document, window);

exposeDebugView(
  window,
  createDebugView({
    pc: () => session?.pc ?? null,
    statusCount: () => station.statusCount,
    lastStatus: () => station.lastStatus,
    lastError: () => page.lastError,
    state: () => page.state,
    boardId: () => page.boardId,
    floor: () => station.floor,
    floorIsMine: () => station.floorIsMine,
    callsign: () => page.callsign,
    canTransmit: () => station.canTransmit,
    isOwner: () => station.isOwner,
    mic: () => station.mic,
    ptt: () => station.ptt,
    lastReleased: () => station.lastReleased,
    lastWarning: () => station.lastWarning,
    capabilities: () => station.capabilities,
    keepalivesSent: () => page.keepalivesSent,
    lastLocalRelease: () => station.lastLocalRelease,
    pttLog: () => page.pttLog,
  }),
);

// ---------------------------------------------------------------------------------------------
// Page state, errors

/** @param {string} state */
function setState(state) {
  page.state = state;
  view.setState(state);
}

/**
 * @param {string} code
 * @param {string} message
 * @param {string | null} [ref]
 */
function showError(code, message, ref = null) {
  page.lastError = Object.freeze({ code, message, ref });
  view.showError(code, message, ref);
}

/** @param {unknown} error */
function reportError(error) {
  const { code, message } = errorFields(error);
  showError(code, message);
}

// ---------------------------------------------------------------------------------------------
// Signing in and out, the server connection, the list of stations

/** @param {SubmitEvent} event */
async function onLoginSubmit(event) {
  event.preventDefault();
  const { email, password } = view.credentials();
  if (email === "" || password === "") {
    view.showLoginError("Enter your email and password.");
    return;
  }
  view.showLoginError("");
  view.setSigningIn(true);
  setState("signing-in");
  try {
    beginSession(await signIn(email, password), email);
  } catch (err) {
    if (err instanceof ConsoleError) {
      page.lastError = Object.freeze({ code: err.code, message: err.message, ref: null });
      view.showLoginError(err.message);
    } else {
      view.showLoginError(`Cannot reach the server: ${err instanceof Error ? err.message : err}`);
    }
    setState("signed-out");
  } finally {
    view.setSigningIn(false);
  }
}

/**
 * Signed in (or registered): keeps the tokens, connects to the server, shows the page the URL
 * names (the pairing page when a sticker's link waits).
 * @param {import("./login.js").Session} signedIn
 * @param {string} email shown when the reply has no callsign
 */
function beginSession(signedIn, email) {
  const mine = new Credentials(signedIn, {
    // the refresh token was refused (revoked, expired or spent twice): start again
    ended: (message) => {
      if (credentials === mine) signOut(message);
    },
  });
  credentials?.close();
  credentials = mine;
  page.callsign = signedIn.callsign;
  view.showSignedIn(signedIn.callsign ?? email);
  registerPage.reset();
  // a fresh access token for every connection attempt, reconnections included
  connectSignaling(() => mine.accessToken());
  router.refresh();
}

/** @param {() => Promise<string>} token gives a fresh access token */
function connectSignaling(token) {
  setState("signaling");
  signaling = new SignalingClient(token, {
    connected: onConnected,
    reconnecting: () => setState("reconnecting"),
    refused: (message) => signOut(`The server refused the connection: ${message}`),
    lost: () => {
      joinGeneration += 1;
      recovery.cancel(); // the join after the server connection is back takes over
      closeSession();
    },
    ended: () => signOut("The server ended the session. Please sign in again."),
    presence: onPresence,
    error: ({ code, message, boardId }) => {
      showError(code, message);
      // the server gave up on this peer connection (no path, or DTLS): try again, later
      if (code === ERROR_CODES.MEDIA_FAILED && boardId === page.boardId && session !== null) {
        recovery.failed("The server could not connect the audio");
      } else if (code === ERROR_CODES.FORBIDDEN && boardId === page.boardId) {
        // the server ended this operator's access (a booking over, a grant revoked): the
        // station is left, and not re-joined by the recovery
        recovery.cancel();
        void leaveBoard({ keepPanel: true }).then(() => setState("failed"));
      }
    },
    shutdown: ({ retryAfterS }) =>
      view.showNotice(`The server is restarting; reconnecting in ${retryAfterS} s…`),
  });
}

function onConnected() {
  void refreshBoards();
  const wanted = page.boardId;
  if (wanted !== null && session === null) {
    // Back after a lost connection: the server forgot our join, so join again.
    page.boardId = null;
    void joinBoard(wanted);
  } else if (session === null) {
    setState("ready");
  }
}

/** @param {string} [message] shown on the sign-in form */
function signOut(message = "") {
  joinGeneration += 1;
  recovery.cancel();
  closeSession();
  page.boardId = null;
  const sig = signaling;
  signaling = null;
  sig?.close(); // the server forgets our joins with the connection
  const mine = credentials;
  credentials = null;
  mine?.close(); // revokes the refresh token on the server
  boards.clear();
  renderBoards();
  page.callsign = null;
  myStations.clear();
  publicStations.clear();
  bookingsPage.clear();
  registerPage.reset();
  view.showSignedOut(message);
  setState("signed-out");
  router.refresh();
}

async function refreshBoards() {
  const sig = signaling;
  if (sig === null) return;
  try {
    const reply = await sig.request("list_boards", {});
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

/** @param {{boardId: string, online: boolean}} presence */
function onPresence({ boardId, online }) {
  myStations.presence(boardId, online);
  publicStations.presence(boardId, online);
  const board = boards.get(boardId);
  if (board === undefined) {
    void refreshBoards(); // a board we have not seen yet: fetch its name
    return;
  }
  board.online = online;
  view.renderBoard(board, page.boardId);
  if (boardId === page.boardId) view.renderStationName(board);
}

/** The whole list, in order (after a refresh). */
function renderBoards() {
  view.renderBoards(boards.values(), page.boardId);
}

/** Which board is joined, in place (moving the items would take the focus off them). */
function renderJoined() {
  for (const board of boards.values()) view.renderBoard(board, page.boardId);
}

// ---------------------------------------------------------------------------------------------
// Joining and leaving a board

/**
 * @param {string} boardId
 * @param {{again?: boolean}} [options] `again`: the recovery's own attempt (the operator's
 *   click on another station, or on this one after a failure, cancels any pending one)
 */
async function joinBoard(boardId, { again = false } = {}) {
  // Already on it (or on the way); after a failure a click retries.
  if (!again && page.boardId === boardId && page.state !== "failed") return;
  if (!again) recovery.cancel();
  const generation = ++joinGeneration;
  // a rejoin by the recovery keeps the panel and the recovery's count of attempts (its back-off)
  await leaveBoard({ keepPanel: again });
  const sig = signaling;
  if (generation !== joinGeneration || sig === null) return;

  station = newStation();
  page.boardId = boardId;
  view.resetStation();
  if (!again) listen.reset();
  tuning.reset();
  dial.reset();
  txPanel.reset();
  const board = boards.get(boardId);
  if (board !== undefined) view.renderStationName(board);
  renderJoined();
  view.showStation(true);
  setState("joining");

  const mine = new BoardSession({
    boardId,
    signaling: sig,
    mediaDevices: navigator.mediaDevices,
    // `?relay=1`: media only through the TURN relay (for networks that need it, and tests)
    forceRelay: new URLSearchParams(location.search).get("relay") === "1",
    events: sessionEvents(() => mine),
  });
  session = mine;
  renderTransmit();
  try {
    await mine.start();
  } catch (err) {
    if (mine.closed) return; // the operator moved on meanwhile
    reportError(err);
    await leaveBoard({ keepPanel: true });
    setState("failed");
  }
}

/** Closes the current board session (if any), without telling the server. */
function closeSession() {
  const mine = session;
  if (mine === null) return;
  mine.close(); // unkeys first, while the channel can still say so
  session = null;
  listen.stop();
  rosterPanel.reset(); // who is on it is no longer known
  setState("closed");
  renderTransmit();
}

/**
 * Leaves the current board: closes the session and tells the server.
 * @param {{keepPanel?: boolean}} [options]
 */
async function leaveBoard({ keepPanel = false } = {}) {
  const boardId = page.boardId;
  const sig = signaling;
  closeSession();
  if (!keepPanel) {
    recovery.cancel();
    page.boardId = null;
    view.showStation(false);
    renderJoined();
    if (sig?.connected) setState("ready");
  }
  if (boardId === null || sig === null || !sig.connected) return;
  try {
    await sig.request("leave", { board_id: boardId });
  } catch (err) {
    // not_joined just means the join itself never completed
    if (!(err instanceof ConsoleError && err.code === ERROR_CODES.NOT_JOINED)) reportError(err);
  }
}

/**
 * What a board session's events do to the page.
 * @param {() => BoardSession} current the session they come from
 * @returns {import("./session.js").SessionEvents}
 */
function sessionEvents(current) {
  return {
    access({ canTransmit, isOwner }) {
      station.canTransmit = canTransmit;
      station.isOwner = isOwner;
      view.renderAccess(canTransmit);
      rosterPanel.render();
    },
    state: setState,
    connection(state) {
      setState(state);
      recovery.connection(state);
      listen.connection(state);
      if (state !== "connected") {
        // An interrupted link cannot carry keep-alives or voice: unkey now rather than let the
        // server's dead-man do it.
        safetyRelease(current(), "the connection to the server was interrupted", "link");
        if (state === "failed") {
          showError("ice_failed", "The audio connection to the station failed.");
        }
      }
      renderTransmit();
    },
    microphone(line, why) {
      if (line === "ended") safetyRelease(current(), "the microphone stopped", "mic_ended");
      station.mic = MIC_STATE_OF_LINE[line];
      view.setMicrophone(describeMicrophone(line, why));
      renderTransmit();
    },
    changed: renderTransmit,
    channel(open) {
      if (!open) safetyRelease(current(), "the control channel closed", "channel_closed");
      renderTransmit();
      rosterPanel.render();
    },
    track: (stream) => listen.play(stream, current().pc, showError),
    ptt: (keyed, why) => onPttChange(current(), keyed, why),
    sent(message) {
      if (message.type === "keepalive") page.keepalivesSent += 1;
    },
    problem: reportError,
    noPath(why) {
      showError("no_media", `${why}.`);
      recovery.failed("No network path for the audio yet");
    },
    messages: controlHandlers(current),
  };
}

// ---------------------------------------------------------------------------------------------
// What the station and the server say on the control channel

/**
 * @param {() => BoardSession} current
 * @returns {import("./messages.js").ControlHandlers}
 */
function controlHandlers(current) {
  return {
    status(status) {
      station.statusCount += 1;
      station.lastStatus = status;
      view.renderStatus(status, station.statusCount);
      if (status.rig_online === false) {
        safetyRelease(current(), "the rig is offline", "rig_offline");
      }
      tuning.sync(status);
      dial.sync(status.freq);
      renderTransmit();
    },
    heartbeat() {
      // the station is alive; its status messages already show it
    },
    roster(message) {
      rosterPanel.update(message);
    },
    floor({ holder, you, tx_limit_s: limit }) {
      station.floor = holder;
      station.floorIsMine = holder !== null && you;
      txPanel.setLimit(station.floorIsMine ? limit : null);
      view.renderFloor(holder, station.floorIsMine);
      renderTransmit();
      rosterPanel.render(); // the holder's notice, the "Ask to talk" toggle
    },
    capabilities({ capabilities }) {
      station.capabilities = capabilities;
      tuning.showCapabilities(capabilities, station.lastStatus?.mode);
      dial.showCapabilities(capabilities);
    },
    ptt_released({ reason, by }) {
      station.lastReleased = Object.freeze({ reason, by });
      // The server has already released the floor: nothing to send, and the operator must
      // press again (an auto-repeating space bar does not re-key: repeats are ignored).
      current().ptt.drop(`server_${reason}`);
      view.showNotice(describeRelease(reason, by));
    },
    tx_warning({ remaining_s: remaining }) {
      station.lastWarning = Object.freeze({ remaining_s: remaining, at: Date.now() });
      if (!current().ptt.keyed) return;
      view.showNotice(
        `TX time-out in ${remaining} s: finish the transmission (key again to go on).`,
      );
      view.showTxWarning(remaining);
    },
    tx_stopped({ reason }) {
      view.showNotice(describeStationStop(reason));
      // The station is no longer transmitting: give the floor back too.
      const ptt = current().ptt;
      if (ptt.keyed) ptt.release(`station_${reason}`);
    },
    error({ code, message, ref }) {
      showError(code, message, ref);
      // A refused `ptt` or keep-alive (floor_busy, forbidden, rig_error, …): we are not
      // transmitting. Releasing also hands back a floor the server may still count as ours.
      const ptt = current().ptt;
      if ((ref === "ptt" || ref === "keepalive") && ptt.keyed) ptt.release(`refused_${code}`);
      if (ref === "ptt" && code === ERROR_CODES.FLOOR_BUSY) {
        view.showNotice(`Not on the air: ${message}.`); // the message names who holds it
      }
      if (ref === "freq") dial.refused();
      if (ref === "floor_request") rosterPanel.refused();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Transmitting: push to talk, safety releases, tuning

/** The transmit panel as the state has it now. */
function transmitNow() {
  const mine = session;
  return transmitControls({
    joined: mine !== null,
    canTransmit: mine?.canTransmit ?? false,
    mic: station.mic,
    micAttached: mine !== null && mine.micTrack !== null,
    channelOpen: mine?.channelOpen ?? false,
    rigOffline: station.lastStatus?.rig_online === false,
    keyed: mine?.ptt.keyed ?? false,
    holder: station.floor,
    floorIsMine: station.floorIsMine,
    isOwner: station.isOwner,
    latching: txPanel.latching,
  });
}

function renderTransmit() {
  const controls = transmitNow();
  view.renderTransmit(controls);
  dial.setEnabled(!controls.tuningDisabled);
  txPanel.micMeter.follow(session?.micTrack ?? null);
}

/**
 * @param {BoardSession} mine
 * @param {boolean} keyed
 * @param {string} why
 */
function onPttChange(mine, keyed, why) {
  if (mine.micTrack !== null) view.setMicrophone(describeMicrophone(keyed ? "live" : "ready"));
  station.ptt = keyed;
  txPanel.keyed(keyed);
  page.pttLog.push(Object.freeze({ keyed, why, at: Math.round(performance.now()) }));
  if (page.pttLog.length > PTT_LOG_LENGTH) page.pttLog.shift();
  if (keyed) {
    view.showNotice("");
    station.lastLocalRelease = null;
  } else {
    pttInput.forget();
    view.clearTxWarning();
    if (why === "keepalive_failed" && !mine.channelOpen) {
      // the channel is closing: a keep-alive found it before its `close` event did
      station.lastLocalRelease = "channel_closed";
      view.showNotice("PTT released: the control channel closed.");
    } else if (why === "keepalive_failed") {
      station.lastLocalRelease = why;
      view.showNotice("PTT released: a keep-alive could not be sent.");
    }
  }
  renderTransmit();
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
  station.lastLocalRelease = code;
  view.showNotice(`PTT released: ${what}.`);
}

const pttInput = new PttInput({
  button: view.els.ptt,
  window,
  // only where the transmit panel can be seen: the space bar on another page keys nothing
  keyEnabled: () => session !== null && session.canTransmit && shownView === "stations",
  canPress: () =>
    session !== null &&
    !session.ptt.keyed &&
    session.micTrack !== null &&
    !transmitNow().buttonDisabled,
  // The microphone is enabled (by the session) once `ptt` true went out.
  press: () => session?.ptt.press() ?? false,
  release: (how) => session?.ptt.release(how),
  latching: () => txPanel.latching,
  confirm: () => txPanel.askConfirm(),
});

// The operator may no longer be at the controls: unkey.
document.addEventListener("visibilitychange", () => {
  if (document.hidden && session !== null) safetyRelease(session, "the page was hidden", "hidden");
});
window.addEventListener("blur", () => {
  if (session !== null) safetyRelease(session, "the window lost focus", "blur");
});

/** @param {{type: "freq" | "mode" | "power", value: number | string}} message */
function sendTuning(message) {
  const mine = session;
  if (mine === null || !mine.canTransmit) return;
  if (!mine.send(message)) {
    const why = `Not connected to the station: “${message.type}” was not sent.`;
    showError("not_connected", why);
  }
}

const tuning = new TuningControls({
  elements: view.els,
  window,
  capabilities: () => station.capabilities,
  send: sendTuning,
  modeButtons: document.getElementById("mode-buttons"),
});

/** The frequency dial: wheel, arrow keys, step, band buttons. */
const dial = new DialControl({
  elements: findDialElements(document),
  send: (hz) => {
    tuning.clearFreqError();
    sendTuning({ type: "freq", value: hz });
  },
  storage: window.localStorage,
});

/** Latching PTT and its confirmation, the microphone meter, the TX clock, insecure pages. */
const txPanel = new TransmitPanel({
  document,
  window,
  latch: () => pttInput.latch(),
  unlatch: () => pttInput.unlatch(),
  changed: renderTransmit,
});

/** Who is on the station, "Ask to talk", and the holder's notice of who waits. */
const rosterPanel = new RosterPanel({
  document,
  send: (message) => session?.send(message) ?? false,
  context: () => ({
    callsign: page.callsign,
    canTransmit: session?.canTransmit ?? false,
    floorIsMine: station.floorIsMine,
  }),
  channelOpen: () => session?.channelOpen ?? false,
});

// ---------------------------------------------------------------------------------------------
// Station sharing: the REST API's pages, and which page is shown

/** Not signed in (any more): what an API call made then fails with. */
function notSignedIn() {
  return new ConsoleError(ERROR_CODES.UNAUTHORIZED, "Not signed in.");
}

const api = new ApiClient({
  token: () => credentials?.accessToken() ?? Promise.reject(notSignedIn()),
  renew: () => credentials?.refresh() ?? Promise.reject(notSignedIn()),
});
/** @param {import("./api.js").ApiRequest} request */
const sendApi = (request) => api.send(request);

const registerPage = new RegisterPage(document, { registered: beginSession });
const pairPage = new PairPage(document, {
  send: sendApi,
  paired(board) {
    if (board?.id) myStations.selectAfterLoad(board.id);
    void refreshBoards();
    // the code is used up: the link leaves the address bar and the history
    router.leavePairing("my-stations");
  },
});
const myStations = new MyStationsPage(document, {
  send: sendApi,
  changed: () => void refreshBoards(),
});
const publicStations = new PublicStationsPage(document, { send: sendApi });
const bookingsPage = new BookingsPage(document, { send: sendApi });

/**
 * Shows the page a route names, as far as the operator may see it, and reads what it lists.
 * @param {import("./router.js").Route} route
 */
function showRoute(route) {
  const signedIn = credentials !== null;
  const shown = resolveView(route, signedIn);
  shownView = shown;
  showView(document, shown, signedIn);
  // the station's audio goes on on the other pages, but the transmitter stays unkeyed there
  if (shown !== "stations" && session !== null) {
    safetyRelease(session, "you left the station's page", "left_page");
  }
  pairPage.showPending(signedIn ? null : route.pairing);
  if (shown === "register") registerPage.focus();
  else if (shown === "pair" && route.pairing !== null) pairPage.show(route.pairing);
  else if (shown === "my-stations") void myStations.load();
  else if (shown === "public") void publicStations.search();
  else if (shown === "bookings") void bookingsPage.load();
}

/** The view shown now (`router.js`). */
let shownView = "signin";
const router = new Router(window, showRoute);

// ---------------------------------------------------------------------------------------------
// The page's own controls

view.els.loginForm.addEventListener("submit", onLoginSubmit);
view.els.logout.addEventListener("click", () => signOut());
view.els.leave.addEventListener("click", () => void leaveBoard());
view.els.clearErrors.addEventListener("click", () => view.clearErrors());
window.addEventListener("pagehide", () => {
  closeSession();
  signaling?.close();
});
setState("signed-out");
router.refresh();
