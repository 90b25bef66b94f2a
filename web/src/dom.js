// Small DOM helpers for the console's pages: finding index.html's elements and making new ones.
// Text goes in as text (`textContent`), never as HTML: names, callsigns and messages come from
// other people.

/**
 * The element with `id`; throws when index.html lacks it (a page and its HTML out of step).
 * @param {Document} doc
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(doc, id) {
  const element = doc.getElementById(id);
  if (element === null) throw new Error(`index.html lacks #${id}`);
  return element;
}

/**
 * A new element: `props` are its class, text, dataset entries and attributes; `children` are
 * appended (strings as text).
 * @param {Document} doc
 * @param {string} tag
 * @param {{
 *   className?: string,
 *   text?: string,
 *   data?: Record<string, string>,
 *   attrs?: Record<string, string>,
 * }} [props]
 * @param {...(Node | string)} children
 * @returns {HTMLElement}
 */
export function el(doc, tag, props = {}, ...children) {
  const element = doc.createElement(tag);
  if (props.className) element.className = props.className;
  if (props.text !== undefined) element.textContent = props.text;
  for (const [key, value] of Object.entries(props.data ?? {})) element.dataset[key] = value;
  for (const [key, value] of Object.entries(props.attrs ?? {})) element.setAttribute(key, value);
  element.append(...children);
  return element;
}

/**
 * A button that calls `onClick` (type "button": it never submits a form).
 * @param {Document} doc
 * @param {string} text
 * @param {() => void} onClick
 * @param {{className?: string, data?: Record<string, string>, attrs?: Record<string, string>}} [props]
 * @returns {HTMLButtonElement}
 */
export function button(doc, text, onClick, props = {}) {
  const element = /** @type {HTMLButtonElement} */ (el(doc, "button", { ...props, text }));
  element.type = "button";
  element.addEventListener("click", onClick);
  return element;
}
