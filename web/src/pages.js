// Which of index.html's sections are shown: each carries `data-view` with the views it belongs
// to (space-separated); the navigation is shown while signed in, its link to the current view
// marked `aria-current="page"`.

/**
 * Whether a section marked `data-view="<views>"` belongs to `view`.
 * @param {string | undefined} views the attribute's value
 * @param {string} view
 */
export function belongsTo(views, view) {
  return (views ?? "").split(/\s+/).includes(view);
}

/**
 * Shows `view`'s sections and hides the others'.
 * @param {Document} doc
 * @param {string} view
 * @param {boolean} signedIn
 */
export function showView(doc, view, signedIn) {
  for (const section of doc.querySelectorAll("[data-view]")) {
    /** @type {HTMLElement} */ (section).hidden = !belongsTo(
      /** @type {HTMLElement} */ (section).dataset.view,
      view,
    );
  }
  const nav = doc.getElementById("nav");
  if (nav !== null) nav.hidden = !signedIn;
  for (const link of doc.querySelectorAll("[data-nav]")) {
    if (/** @type {HTMLElement} */ (link).dataset.nav === view) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
}
