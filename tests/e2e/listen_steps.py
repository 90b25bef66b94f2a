"""The listening panel's steps of `console_check.py` (issue 9): what an operator hears and sees.

On the operator's page, once it listens to the demo station's ~1 kHz tone: the waterfall has
lit pixels, the RX meter stands above its floor, the link line shows figures; the mute button
mutes the `<audio>` element and unmuting (from the keyboard) brings the sound back; the volume
slider moves with the arrow keys; the dark theme makes the page dark; at phone width the station
card stacks and its controls are finger-sized. Screenshots: listening (light), dark, phone.

Self-contained on purpose (no import of `console_check`, which imports this module).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, ViewportSize

POLL_S = 0.1
# bounded waits (s): the spectrum and the meter draw every animation frame, the link line is
# refreshed once a second (the loss needs two samples)
DRAW_WAIT_S = 5.0
LINK_WAIT_S = 6.0
AUDIO_LEVEL_WAIT_S = 5.0
PHONE: ViewportSize = {"width": 390, "height": 844}
VOLUME_STEPS = 3

# What the listening panel shows, in one round trip. A waterfall pixel is "lit" when it is
# clearly brighter than the floor colour (rgb(0, 0, 24)).
PANEL_JS = """
() => {
  const canvas = document.getElementById("waterfall");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0;
  const columns = new Set();
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] + data[i + 1] + data[i + 2] > 150) {
      lit += 1;
      columns.add((i / 4) % canvas.width);
    }
  }
  const meter = document.getElementById("rx-level");
  const line = document.getElementById("link-quality");
  const audio = document.getElementById("rx-audio");
  const mute = document.getElementById("rx-mute");
  const volume = document.getElementById("rx-volume");
  return {
    lit_pixels: lit,
    total_pixels: canvas.width * canvas.height,
    lit_columns: [...columns].sort((a, b) => a - b),
    canvas_width: canvas.width,
    meter: meter.value,
    meter_min: meter.min,
    level_text: document.getElementById("rx-level-text").textContent.trim(),
    link_text: line.innerText.replace(/\\s+/g, " ").trim(),
    link_level: line.dataset.level,
    link_items: [...line.querySelectorAll(".link-item")].map(
      (s) => ({ key: s.dataset.key, text: s.textContent, level: s.className })),
    muted: audio.muted,
    paused: audio.paused,
    volume: audio.volume,
    audio_controls: audio.controls,
    audio_visible: audio.checkVisibility ? audio.checkVisibility() : audio.offsetParent !== null,
    mute_pressed: mute.getAttribute("aria-pressed"),
    mute_text: mute.textContent.trim(),
    volume_value: volume.value,
    stored_audio: localStorage.getItem("radiocore-audio"),
  };
}
"""

# How a control focused from the keyboard shows it.
FOCUS_JS = """
(id) => {
  const element = document.getElementById(id);
  const style = getComputedStyle(element);
  return {
    focused: document.activeElement === element,
    focus_visible: element.matches(":focus-visible"),
    outline_style: style.outlineStyle,
    outline_width: parseFloat(style.outlineWidth) || 0,
  };
}
"""

AUDIO_LEVEL_JS = """
async () => {
  const pc = window.radiocore && window.radiocore.pc;
  if (!pc) return null;
  let level = null;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") level = s.audioLevel ?? 0;
  });
  return level;
}
"""

THEME_JS = """
() => {
  const root = document.documentElement;
  const body = getComputedStyle(document.body);
  const card = getComputedStyle(document.getElementById("station"));
  const toggle = document.getElementById("theme-toggle");
  return {
    theme: root.dataset.theme,
    toggle_pressed: toggle.getAttribute("aria-pressed"),
    stored: localStorage.getItem("radiocore-theme"),
    body_background: body.backgroundColor,
    body_color: body.color,
    card_background: card.backgroundColor,
  };
}
"""

# Layout at phone width: the page must not scroll sideways, the listening controls stack, and
# every visible control of the station card and the top bar is at least 44 px tall.
PHONE_JS = """
() => {
  const box = (id) => document.getElementById(id).getBoundingClientRect();
  const controls = [...document.querySelectorAll(
    "#station button, #station input, #station select, .topbar button, #boards button")]
    .filter((el) => el.checkVisibility ? el.checkVisibility() : el.offsetParent !== null)
    .map((el) => {
      // a check box is pressed through its label as well: the taller of the two counts
      const label = el.type === "checkbox" && el.id
        ? document.querySelector(`label[for="${el.id}"]`) : null;
      const r = el.getBoundingClientRect();
      const height = Math.max(r.height, label ? label.getBoundingClientRect().height : 0);
      return { id: el.id || el.className, height: Math.round(height),
               width: Math.round(r.width) };
    });
  const mute = box("rx-mute");
  const volume = document.querySelector(".rx-volume").getBoundingClientRect();
  const level = document.querySelector(".rx-level").getBoundingClientRect();
  const boards = document.getElementById("boards").closest("section").getBoundingClientRect();
  const station = box("station");
  return {
    viewport_width: window.innerWidth,
    scroll_width: document.documentElement.scrollWidth,
    controls,
    small_controls: controls.filter((c) => c.height < 44),
    stacked_controls: mute.bottom <= volume.top && volume.bottom <= level.top,
    station_below_boards: station.top >= boards.bottom,
    station_width: Math.round(station.width),
    waterfall_width: Math.round(box("waterfall").width),
  };
}
"""


def _poll(what: str, timeout_s: float, probe: Callable[[], Any]) -> Any:
    """`probe()` until truthy, at most `timeout_s`; returns the last value either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(POLL_S)


def _panel(page: Page) -> dict[str, Any]:
    panel: dict[str, Any] = page.evaluate(PANEL_JS)
    return panel


def _link_has_figures(panel: dict[str, Any]) -> bool:
    items = {item["key"]: item["text"] for item in panel["link_items"]}
    return any(ch.isdigit() for ch in items.get("rtt", "")) and "~" in items.get("delay", "")


def check_listen_panel(page: Page, screenshot: Path, result: dict[str, Any]) -> None:
    """Right after `check_listening` (the page hears the demo's tone); fills
    `result["listen"]` as it goes and leaves the page as it found it (unmuted, volume and
    theme restored, desktop viewport)."""
    listen: dict[str, Any] = {}
    result["listen"] = listen

    listen["drawn"] = _poll(
        "lit waterfall and meter",
        DRAW_WAIT_S,
        lambda: (p := _panel(page))["lit_pixels"] > 0 and p["meter"] > p["meter_min"] and p,
    ) or _panel(page)
    listen["with_figures"] = _poll(
        "link figures", LINK_WAIT_S, lambda: _link_has_figures(p := _panel(page)) and p
    ) or _panel(page)

    # mute with a click, unmute from the keyboard
    page.locator("#rx-mute").click()
    listen["muted"] = _panel(page)
    page.locator("#rx-mute").focus()
    page.keyboard.press("Enter")
    listen["unmuted"] = _panel(page)
    listen["mute_focus"] = page.evaluate(FOCUS_JS, "rx-mute")
    listen["audio_level_unmuted"] = _poll(
        "audioLevel > 0 after unmuting", AUDIO_LEVEL_WAIT_S, lambda: page.evaluate(AUDIO_LEVEL_JS)
    )

    # the volume from the keyboard, then back
    volume = page.locator("#rx-volume")
    volume.focus()
    for _ in range(VOLUME_STEPS):
        page.keyboard.press("ArrowLeft")
    listen["volume_down"] = _panel(page)
    listen["volume_focus"] = page.evaluate(FOCUS_JS, "rx-volume")
    for _ in range(VOLUME_STEPS):
        page.keyboard.press("ArrowRight")
    listen["volume_back"] = _panel(page)["volume"]

    directory = screenshot.parent
    listen_shot = directory / "console-listen.png"
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(listen_shot), full_page=True)
    listen["light"] = page.evaluate(THEME_JS)

    toggle = page.locator("#theme-toggle")
    toggle.click()
    listen["dark"] = page.evaluate(THEME_JS)
    dark_shot = directory / "console-dark.png"
    page.screenshot(path=str(dark_shot), full_page=True)
    toggle.click()
    listen["light_again"] = page.evaluate(THEME_JS)

    viewport = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        page.evaluate("new Promise((done) => requestAnimationFrame(() => done(0)))")
        listen["phone"] = page.evaluate(PHONE_JS)
        phone_shot = directory / "console-phone.png"
        page.screenshot(path=str(phone_shot), full_page=True)
    finally:
        if viewport is not None:
            page.set_viewport_size(viewport)
    listen["screenshots"] = [str(listen_shot), str(dark_shot), str(phone_shot)]
