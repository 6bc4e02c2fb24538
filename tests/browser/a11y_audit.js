// The accessibility measurements of tests/browser/test_web_accessibility.py, run in the page (its docstring
// states the rules). audit(lang) measures the page as it stands; focused() the element the keyboard focused.

const describe = (el) => {
  if (!el || el === document) return 'document';
  const id = el.id ? '#' + el.id : '';
  const classes = typeof el.className === 'string' ? el.className.trim() : '';
  const cls = classes ? '.' + classes.split(/\s+/).join('.') : '';
  const text = (el.getAttribute('aria-label') || el.innerText || el.value || el.getAttribute('name') || '')
    .replace(/\s+/g, ' ').trim().slice(0, 40);
  return `<${el.tagName.toLowerCase()}${id}${cls}> "${text}"`;
};

const shown = (el) => {
  if (!el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) return false;
  const r = el.getBoundingClientRect();
  // 1 px boxes are the visually-hidden texts screen readers read; a box left of the page, the skip link.
  return r.width > 1 && r.height > 1 && r.right > 0;
};

const rgba = (text) => {
  const m = (text || '').match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const p = m[1].split(/[\s,/]+/).filter(Boolean).map(parseFloat);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};

// ``top`` (with its alpha) composited over an opaque colour.
const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);

// WCAG 2.2's relative luminance and contrast ratio.
const luminance = (c) => {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const ratio = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
const hex = (c) => '#' + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');

// The colour under an element: its and its ancestors' backgrounds composited up to the first opaque one, white
// under all; null when a background image is in the way.
const backgroundOf = (el) => {
  const layers = [];
  for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
    const s = getComputedStyle(e);
    if (s.backgroundImage !== 'none') return null;
    const c = rgba(s.backgroundColor);
    if (c && c[3] > 0) {
      layers.push(c);
      if (c[3] >= 1) break;
    }
  }
  let colour = [255, 255, 255, 1];
  for (const layer of layers.reverse()) colour = over(layer, colour);
  return colour;
};

const opacityOf = (el) => {
  let o = 1;
  for (let e = el; e && e.nodeType === 1; e = e.parentElement) o *= parseFloat(getComputedStyle(e).opacity);
  return o;
};

const nameOf = (el) => {
  const aria = (el.getAttribute('aria-label') || '').trim();
  if (aria) return aria;
  const by = (el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)
    .map((id) => (document.getElementById(id) || {}).textContent || '').join(' ').trim();
  if (by) return by;
  return [...(el.labels || [])].map((l) => l.textContent).join(' ').trim();
};

const audit = (lang) => {
  const found = [];
  const say = (rule, el, value) => found.push(`${rule}: ${describe(el)}: ${value}`);

  // Names.
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (shown(el) && !nameOf(el)) say('no accessible name', el, 'no label, aria-label or aria-labelledby');
  }

  // Touch targets: a radio's or a checkbox's is its label.
  const targets = [];
  for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')) {
    let target = el;
    if (el.matches('input[type=radio], input[type=checkbox]') && el.labels && el.labels.length) target = el.labels[0];
    if (!targets.includes(target) && shown(target)) targets.push(target);
  }
  const rects = new Map(targets.map((t) => [t, t.getBoundingClientRect()]));
  const inRunningText = (el) => {
    if (getComputedStyle(el).display !== 'inline') return false;
    let block = el.parentElement;
    while (block && getComputedStyle(block).display.startsWith('inline')) block = block.parentElement;
    const letters = (e) => e.textContent.replace(/\s+/g, '').length;
    return !!block && letters(block) > letters(el);
  };
  const centre = (r) => [r.left + r.width / 2, r.top + r.height / 2];
  const toRect = ([x, y], r) => Math.hypot(Math.max(r.left - x, 0, x - r.right), Math.max(r.top - y, 0, y - r.bottom));
  const small = targets.filter((t) => rects.get(t).width < 24 || rects.get(t).height < 24);
  for (const t of targets) {
    const r = rects.get(t);
    const size = `${r.width.toFixed(1)}x${r.height.toFixed(1)}`;
    if (r.width >= 44 && r.height >= 44) continue;
    if (!inRunningText(t)) {
      say('touch target under 44x44', t, size);
      continue;
    }
    if (r.width >= 24 && r.height >= 24) continue;
    const [x, y] = centre(r);
    const crowded = targets.some((o) => o !== t && toRect([x, y], rects.get(o)) < 12)
      || small.some((o) => o !== t && Math.hypot(x - centre(rects.get(o))[0], y - centre(rects.get(o))[1]) < 24);
    if (crowded) say('inline link under 24x24 with a neighbour within its 24 px circle (2.5.8)', t, size);
  }

  // Contrast of text: an element's own text, a control's value or placeholder; disabled controls excused.
  const checkText = (el, colour, what) => {
    if (el.closest('[disabled]') || el.matches(':disabled')) return;
    const background = backgroundOf(el);
    if (!background) {
      say('contrast not measurable (background image)', el, '');
      return;
    }
    const fg = rgba(colour);
    const text = over([fg[0], fg[1], fg[2], fg[3] * opacityOf(el)], background);
    const s = getComputedStyle(el);
    const px = parseFloat(s.fontSize);
    const need = px >= 24 || (px >= 18.66 && parseInt(s.fontWeight, 10) >= 700) ? 3 : 4.5;
    const got = ratio(text, background);
    if (got < need) {
      say(`contrast under ${need}:1${what}`, el, `${got.toFixed(2)}:1 (${hex(text)} on ${hex(background)}, ${px}px)`);
    }
  };
  const valued = 'input:not([type=hidden]):not([type=radio]):not([type=checkbox]), select, textarea';
  for (const el of document.body.querySelectorAll('*')) {
    if (['SCRIPT', 'STYLE', 'OPTION', 'OPTGROUP'].includes(el.tagName)) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const control = el.matches(valued);
    if (!(own || control) || !shown(el)) continue;
    if (own || el.value || el.tagName === 'SELECT') checkText(el, getComputedStyle(el).color, '');
    if (control && el.placeholder && !el.value) {
      checkText(el, getComputedStyle(el, '::placeholder').color, ' (placeholder)');
    }
  }

  // Layout and language.
  const width = document.documentElement.scrollWidth;
  if (width > 390) say('wider than the 390 px screen', document, `${width}px`);
  const wanted = lang === 'zh' ? 'zh-CN' : 'en';
  const actual = document.documentElement.lang;
  if (actual !== wanted) say('html[lang] is not ' + wanted, document, JSON.stringify(actual));
  if (lang === 'zh') {
    // A Chinese page speaks Chinese (3.1.2): no machine code (CARD_FROZEN), English name or word in its text,
    // except where a part is marked as another language (the switch to English, the brand's Latin name) and
    // the few Latin words Chinese apps use as they are.
    const latin = /[A-Za-z][A-Za-z0-9]*(?:[_ '-][A-Za-z][A-Za-z0-9]*)*/g;
    const allowed = new Set(['App', 'APP', 'PDF', 'Cookie', 'ID', 'H5', 'SHA', 'MB', 'KB']);
    for (const el of document.body.querySelectorAll('*')) {
      if (['SCRIPT', 'STYLE'].includes(el.tagName) || !shown(el)) continue;
      const part = el.closest('[lang]');
      if ((part && !part.lang.startsWith('zh')) || el.closest('[translate=no]')) continue;  // a name, as it is
      const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join(' ');
      const identifier = (w) => /^[A-Z0-9]*[0-9][A-Z0-9]*$/.test(w) || /^[0-9a-f]{16,}$/.test(w);  // a loan number
      const words = [...own.matchAll(latin)].map((m) => m[0])
        .filter((w) => !allowed.has(w) && w.length > 1 && !identifier(w));
      if (words.length) say('English or a machine code on a Chinese page (3.1.2)', el, words.join(', '));
    }
  }
  const h1s = document.querySelectorAll('h1').length;
  if (h1s !== 1) say('not exactly one h1', document, `${h1s}`);

  // The main action, for the keyboard's round: the first primary button in main, else its first submit button.
  document.querySelectorAll('[data-a11y-main]').forEach((e) => e.removeAttribute('data-a11y-main'));
  const visible = (selector) => [...document.querySelectorAll(selector)].filter(shown);
  const main = visible('main .button.primary')[0] || visible('main button[type=submit]')[0];
  if (main) main.setAttribute('data-a11y-main', '');
  return {found, main: main ? describe(main) : null};
};

// The element focused: marked as seen (``again`` when it comes round a second time), whether it is the main
// action, and what is wrong with how it shows its focus.
const focused = () => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  // Tab moving on inside a frame (the contract's scroller, then its links) leaves the frame the active element:
  // that is not the round coming back, which only a different element focused in between can show.
  const last = window.a11yLastFocused;
  window.a11yLastFocused = el;
  if (el.tagName === 'IFRAME' && el === last) return null;
  if (el.dataset.a11ySeen) return {again: true};
  el.dataset.a11ySeen = '1';
  const result = {desc: describe(el), main: el.hasAttribute('data-a11y-main'), problems: []};
  if (el.tagName === 'IFRAME') return result;  // the document inside (the contract) is the API's, not the app's
  const s = getComputedStyle(el);
  let ring = null;
  let width = 0;
  if (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) {
    ring = rgba(s.outlineColor);
    width = parseFloat(s.outlineWidth);
  } else if (s.boxShadow !== 'none') {
    ring = rgba(s.boxShadow);
    const px = (s.boxShadow.replace(/rgba?\([^)]*\)/, '').match(/-?[\d.]+px/g) || []).map(parseFloat);
    width = Math.max(Math.abs(px[3] || 0), Math.abs(px[2] || 0));
  }
  if (!ring || width < 2) {
    const how = `outline ${s.outlineStyle} ${s.outlineWidth}, box-shadow ${s.boxShadow}`;
    result.problems.push(`no visible focus indicator (${how})`);
  } else {
    const under = backgroundOf(el.parentElement) || [255, 255, 255, 1];  // the ring is drawn outside the element
    const got = ratio(ring, under);
    if (got < 3) result.problems.push(`focus indicator contrast ${got.toFixed(2)}:1 under 3:1 (${hex(ring)} on ${hex(under)})`);
  }
  const r = el.getBoundingClientRect();
  const points = [[r.left + r.width / 2, r.top + r.height / 2], [r.left + 2, r.top + 2], [r.right - 2, r.top + 2],
                  [r.left + 2, r.bottom - 2], [r.right - 2, r.bottom - 2]];
  const own = (hit) => hit && (hit === el || el.contains(hit) || [...(el.labels || [])].some((l) => l.contains(hit)));
  if (!points.some(([x, y]) => own(document.elementFromPoint(x, y)))) {
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    result.problems.push(`focused but hidden (under ${hit ? describe(hit) : 'the screen edge'})`);
  }
  return result;
};
