// Times as people type and read them (their own clock's local time) and as the API keeps them
// (UTC, RFC 3339). A booking's start comes from a `datetime-local` field ("2026-12-01T19:00",
// no offset): it is read as the browser's local time — with the offset that holds on that day,
// summer time included — and sent in UTC; times from the API are shown in local time again.
// Pure functions (node:test runs them under a fixed TZ).

const LOCAL_INPUT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;

/** @param {number} n */
const two = (n) => String(n).padStart(2, "0");

/**
 * A `datetime-local` value as the instant it means on this computer's clock; null when it is
 * not one, or names a time the clock skips (the hour lost when summer time begins) or a day
 * that does not exist.
 * @param {string} value
 * @returns {Date | null}
 */
export function parseLocalInput(value) {
  const match = LOCAL_INPUT.exec(value.trim());
  if (match === null) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map((part) => Number(part ?? 0));
  const date = new Date(year, month - 1, day, hour, minute, second);
  const same =
    date.getFullYear() === year &&
    date.getMonth() === month - 1 &&
    date.getDate() === day &&
    date.getHours() === hour &&
    date.getMinutes() === minute;
  return same ? date : null;
}

/**
 * An instant in UTC as the API takes it: "2026-12-01T18:00:00Z" (whole seconds).
 * @param {Date} date
 */
export function utcText(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * A `datetime-local` field's value as UTC for the API, or why it cannot be.
 * @param {string} value
 * @returns {{utc: string} | {error: string}}
 */
export function localInputToUtc(value) {
  if (value.trim() === "") return { error: "Choose when the booking starts." };
  if (!LOCAL_INPUT.test(value.trim())) {
    return { error: `“${value.trim()}” is not a date and time (like 2026-12-01T19:00).` };
  }
  const date = parseLocalInput(value);
  if (date === null) {
    const shown = value.trim().replace("T", " ");
    return {
      error: `${shown} does not exist on your clock (summer time skips it, or no such day).`,
    };
  }
  return { utc: utcText(date) };
}

/**
 * An instant as a `datetime-local` field's value, in local time: "2026-12-01T19:00".
 * @param {Date} date
 */
export function localInputValue(date) {
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}` +
    `T${two(date.getHours())}:${two(date.getMinutes())}`
  );
}

/**
 * The next full quarter of an hour after `now` (local clock), for a booking form's default.
 * @param {Date} now
 * @returns {Date}
 */
export function nextQuarterHour(now) {
  const next = new Date(now.getTime());
  next.setSeconds(0, 0);
  next.setMinutes(Math.floor(next.getMinutes() / 15) * 15 + 15);
  return next;
}

/**
 * An instant from the API (RFC 3339) in local time: "2026-12-01 19:00"; the text itself when
 * it is not a time.
 * @param {string} iso
 */
export function localText(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return `${localInputValue(date).replace("T", " ")}`;
}

/**
 * A window from the API in local time: "2026-12-01 19:00–19:30", with the end's date when it
 * falls on another day ("2026-12-01 23:30 – 2026-12-02 00:30").
 * @param {string} startIso
 * @param {string} endIso
 */
export function localWindow(startIso, endIso) {
  const start = localText(startIso);
  const end = localText(endIso);
  if (start.slice(0, 10) === end.slice(0, 10)) return `${start}–${end.slice(11)}`;
  return `${start} – ${end}`;
}

/**
 * A duration typed in minutes: a whole positive number, or why not.
 * @param {string} text
 * @returns {{minutes: number} | {error: string}}
 */
export function parseMinutes(text) {
  const value = text.trim();
  if (!/^\d+$/.test(value) || Number(value) === 0) {
    return { error: "Give the duration in whole minutes." };
  }
  return { minutes: Number(value) };
}

/**
 * The local clock's offset from UTC on a day, for a form's hint: "UTC+01:00", "UTC−05:00",
 * "UTC".
 * @param {Date} date
 */
export function utcOffsetText(date) {
  const minutes = -date.getTimezoneOffset();
  if (minutes === 0) return "UTC";
  const sign = minutes > 0 ? "+" : "−";
  const abs = Math.abs(minutes);
  return `UTC${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}
