// The playground page: a chat list on the left, one chat on the right, kept fresh by polling.
// Message HTML comes from the server already made safe (only Telegram's tags, everything
// else escaped); every other string is put on the page as text, never as markup.
"use strict";

const ROLE_LABEL = {
  staff: "Nhân viên y tế · Hospital staff", donor: "Người hiến · Donor", lead: "Trưởng CLB · Club lead",
  admin: "Quản trị · Admin", visitor: "Khách mới · New visitor",
};
const FIRST_TRY = {  // what to send first, by role, shown in an empty chat
  staff: "/urgent O- 2", donor: "/me", lead: "/roster", admin: "/help", visitor: "/start",
};
const CHAT_POLL_MS = 600;
const LIST_POLL_MS = 1500;

const state = {
  personas: [], places: [], current: null, version: null,
  seenCounts: {},          // persona id -> bot messages already seen (for unread badges)
  seenNotices: {},         // persona id -> Set of callback answer ids already shown
  rendered: new Map(),     // message id -> {json, el}
  commands: [], keyboardHidden: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

async function api(path, body) {
  const options = body instanceof FormData ? { method: "POST", body }
    : body !== undefined ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }
    : {};
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 2600);
}

function showAlert(text) {
  $("alert-text").textContent = text;
  $("alert-dialog").hidden = false;
  $("alert-ok").focus();
}

function initials(name) {
  const words = name.split(/\s+/).filter(Boolean);
  return ((words[0] || "?")[0] + (words.length > 1 ? words[words.length - 1][0] : "")).toUpperCase();
}

function currentPersona() {
  return state.personas.find((p) => p.id === state.current);
}

// --- the chat list --------------------------------------------------------------------

function renderPersonas() {
  const list = $("personas");
  list.textContent = "";
  for (const p of state.personas) {
    const item = el("li", "persona" + (p.id === state.current ? " active" : ""));
    item.dataset.personaId = p.id;
    item.dataset.role = p.role;
    const avatar = el("div", "avatar role-" + p.role, initials(p.name));
    const body = el("div", "body");
    const top = el("div", "top");
    top.append(el("span", "name", p.name));
    const unread = p.bot_messages - (state.seenCounts[p.id] ?? p.bot_messages);
    if (unread > 0 && p.id !== state.current) top.append(el("span", "badge new", String(unread)));
    body.append(top, el("div", "role", ROLE_LABEL[p.role] || p.role), el("div", "detail", p.detail),
      el("div", "preview", p.last || "—"));
    item.append(avatar, body);
    item.addEventListener("click", () => selectPersona(p.id));
    list.append(item);
  }
}

async function refreshPersonas() {
  try {
    const data = await api("/api/personas");
    state.personas = data.personas;
    state.places = data.places;
    $("chat-bot").textContent = "↔ " + data.bot.name + " @" + data.bot.username;
    for (const p of state.personas) {
      if (!(p.id in state.seenCounts)) state.seenCounts[p.id] = p.bot_messages;
      if (p.id === state.current) state.seenCounts[p.id] = p.bot_messages;
    }
    if (state.current === null && state.personas.length) selectPersona(state.personas[0].id);
    else renderPersonas();
  } catch (err) {
    $("chat-bot").textContent = "⚠ " + err.message;
  }
}

function selectPersona(id) {
  state.current = id;
  state.version = null;
  state.rendered.clear();
  state.keyboardHidden = null;
  $("messages").textContent = "";
  $("command-menu").hidden = true;
  const p = currentPersona();
  $("chat-name").textContent = p.name;
  $("chat-detail").textContent = (ROLE_LABEL[p.role] || p.role) + " · " + p.detail;
  const avatar = $("chat-avatar");
  avatar.className = "avatar role-" + p.role;
  avatar.textContent = initials(p.name);
  renderPersonas();
  pollChat();
  $("composer-text").focus();
}

// --- one chat -------------------------------------------------------------------------

async function pollChat() {
  const id = state.current;
  if (id === null) return;
  try {
    const since = state.version ? "?since=" + encodeURIComponent(state.version) : "";
    const data = await api("/api/chat/" + id + since);
    if (id !== state.current || !data.changed) return;
    const first = state.version === null;
    state.version = data.version;
    renderMessages(data.messages, first);
    renderReplyKeyboard(data.reply_keyboard);
    state.commands = data.commands || [];
    showNotices(id, data.notices || [], first);
  } catch (err) {
    /* the next poll retries; a stopped server shows in the header */
    $("chat-bot").textContent = "⚠ " + err.message;
  }
}

function renderMessages(messages, first) {
  const box = $("messages");
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const keep = new Set();
  let added = false;
  let previous = null;
  for (const m of messages) {
    keep.add(m.id);
    const json = JSON.stringify(m);
    const known = state.rendered.get(m.id);
    if (known && known.json === json) { previous = known.el; continue; }
    const node = renderMessage(m);
    if (known) {
      known.el.replaceWith(node);     // an edit: the same place in the chat, new content
      if (!first) flash(node);
    } else {
      if (previous) previous.after(node); else box.prepend(node);
      added = true;
    }
    state.rendered.set(m.id, { json, el: node });
    previous = node;
  }
  for (const [id, known] of state.rendered) {
    if (!keep.has(id)) { known.el.remove(); state.rendered.delete(id); }
  }
  const empty = box.querySelector(".empty");
  if (!messages.length && !empty) {
    const hint = el("div", "empty", "Chưa có tin nhắn · No messages yet. Thử · Try ");
    hint.append(el("span", "cmd", FIRST_TRY[(currentPersona() || {}).role] || "/help"));
    box.append(hint);
  } else if (messages.length && empty) {
    empty.remove();
  }
  if (first || (added && nearBottom)) box.scrollTop = box.scrollHeight;
}

function flash(node) {
  node.classList.add("flash");
  setTimeout(() => node.classList.remove("flash"), 1300);
}

function renderMessage(m) {
  const wrap = el("div", "msg " + (m.from_bot ? "bot" : "me"));
  wrap.dataset.messageId = m.id;
  const bubble = el("div", "bubble");
  if (m.venue) bubble.append(pinCard(m.venue.title, m.venue.address, m.venue.lat, m.venue.lon));
  else if (m.location) bubble.append(pinCard("Vị trí · Location", "", m.location.lat, m.location.lon));
  if (m.contact) {
    const card = el("div", "card");
    const info = el("div");
    info.append(el("div", "title", m.contact.name || "Contact"), el("div", "small", m.contact.phone));
    card.append(el("span", "icon-big", "👤"), info);
    bubble.append(card);
  }
  if (m.document) {
    const card = el("div", "card");
    const info = el("div");
    const link = el("a", "title", m.document.name);
    link.href = "/api/file/" + encodeURIComponent(m.document.file_id);
    link.setAttribute("download", m.document.name);
    info.append(link, el("div", "small", formatSize(m.document.size)));
    card.append(el("span", "icon-big", "📎"), info);
    bubble.append(card);
  }
  for (const key of ["html", "caption_html"]) {
    if (m[key] === undefined) continue;
    const text = el("div", "text");
    text.innerHTML = m[key];  // built by the server from entities: only b/i/u/s/code/pre/a/blockquote/span
    bubble.append(text);
  }
  const time = m.date ? new Date(m.date * 1000).toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Ho_Chi_Minh" }) : "";
  bubble.append(el("div", "meta", (m.edited ? "đã sửa · edited  " : "") + time));
  wrap.append(bubble);
  if (m.buttons) wrap.append(inlineKeyboard(m));
  return wrap;
}

function pinCard(title, address, lat, lon) {
  const card = el("div", "pin-card");
  const map = el("div", "pin-map");
  map.append(el("span", "pin", "📍"));
  const info = el("div");
  info.append(el("div", "title", title));
  if (address) info.append(el("div", "small", address));
  info.append(el("div", "small", Number(lat).toFixed(5) + ", " + Number(lon).toFixed(5)));
  card.append(map, info);
  return card;
}

function formatSize(bytes) {
  return bytes >= 1024 * 1024 ? (bytes / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1024)) + " KB";
}

function inlineKeyboard(m) {
  const box = el("div", "ikb");
  for (const row of m.buttons) {
    const line = el("div", "ikb-row");
    for (const b of row) {
      if (b.url) {
        const link = el("a", null, b.text + " ↗");
        link.href = b.url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        line.append(link);
      } else {
        const button = el("button", null, b.text);
        button.type = "button";
        button.disabled = b.data === undefined;
        button.addEventListener("click", () => tap(m.id, b.data, button));
        line.append(button);
      }
    }
    box.append(line);
  }
  return box;
}

function renderReplyKeyboard(keyboard) {
  const box = $("reply-keyboard");
  box.textContent = "";
  const signature = JSON.stringify(keyboard);
  $("composer-text").placeholder = (keyboard && keyboard.placeholder) || "Tin nhắn · Message";
  if (!keyboard || state.keyboardHidden === signature) { box.hidden = true; return; }
  for (const row of keyboard.rows) {
    const line = el("div", "rkb-row");
    for (const b of row) {
      const button = el("button", null, b.text);
      button.type = "button";
      button.dataset.kind = b.kind;
      button.addEventListener("click", () => {
        if (keyboard.one_time) { state.keyboardHidden = signature; box.hidden = true; }
        if (b.kind === "contact") shareContact();
        else if (b.kind === "location") openLocation();
        else sendText(b.text);
      });
      line.append(button);
    }
    box.append(line);
  }
  box.hidden = false;
}

function showNotices(id, notices, first) {
  const seen = state.seenNotices[id] || (state.seenNotices[id] = new Set());
  for (const n of notices) {
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    if (first) continue;  // answers from before the page opened are history, not news
    if (n.alert) showAlert(n.text); else toast(n.text);
  }
}

// --- what the persona does ---------------------------------------------------------------

function soon() {
  // The bot answers within a moment: look a few times quickly, then fall back to the steady poll.
  for (const ms of [150, 400, 900, 1600]) setTimeout(pollChat, ms);
}

async function act(path, body) {
  try {
    const result = await api(path, body);
    soon();
    return result;
  } catch (err) {
    toast("⚠ " + err.message);
    return null;
  }
}

function sendText(text) {
  if (!text.trim() || state.current === null) return;
  return act("/api/send", { user_id: state.current, text });
}

async function tap(messageId, data, button) {
  button.disabled = true;
  await act("/api/tap", { user_id: state.current, message_id: messageId, data });
  setTimeout(() => { button.disabled = false; }, 1200);
}

function shareContact() {
  return act("/api/contact", { user_id: state.current });
}

function uploadFile(file) {
  const form = new FormData();
  form.append("user_id", String(state.current));
  form.append("file", file, file.name);
  return act("/api/upload", form);
}

function toggleCommands() {
  const menu = $("command-menu");
  if (!menu.hidden) { menu.hidden = true; return; }
  menu.textContent = "";
  if (!state.commands.length) menu.append(el("div", "d", "—"));
  for (const c of state.commands) {
    const item = el("button");
    item.type = "button";
    item.append(el("span", "c", "/" + c.command), el("span", "d", c.description));
    item.addEventListener("click", () => { menu.hidden = true; sendText("/" + c.command); });
    menu.append(item);
  }
  menu.hidden = false;
}

// --- the location picker: a lat/lon grid and an approximate outline of northern Vietnam --------

const MAP = { lon0: 102.0, lat1: 23.6, sx: 93.0, sy: 100.0, width: 577, height: 400 };
// Approximate, hand-drawn from a few border and coast points; enough to find one's way.
const OUTLINE = [
  [102.14, 22.40], [102.40, 22.62], [102.60, 22.72], [103.15, 22.50], [103.50, 22.70], [103.95, 22.50],
  [104.05, 22.72], [104.40, 22.78], [104.75, 22.85], [105.05, 23.20], [105.33, 23.38], [105.70, 23.05],
  [106.10, 22.95], [106.50, 22.95], [106.75, 22.85], [106.65, 22.55], [106.70, 22.30], [106.75, 21.95],
  [107.05, 21.85], [107.40, 21.65], [107.98, 21.54], [107.75, 21.35], [107.40, 21.20], [107.05, 20.95],
  [106.80, 20.70], [106.55, 20.30], [106.15, 19.95], [105.85, 19.55], [105.75, 19.25], [105.65, 18.95],
  [105.60, 18.50], [104.50, 18.50], [103.90, 19.20], [104.40, 20.20], [104.00, 20.80], [103.60, 20.75],
  [103.20, 20.85], [102.90, 21.00], [102.65, 21.30], [102.55, 21.70], [102.15, 22.00],
];
const CITIES = [{ name: "Hà Nội", lat: 21.0285, lon: 105.8542, kind: "city" }];
const PRESETS = [
  { label: "Miền Bắc · North", lat: 21.6, lon: 105.1, span: 6.2 },
  { label: "Hải Phòng", lat: 20.85, lon: 106.69, span: 0.5 },
  { label: "Lào Cai", lat: 22.46, lon: 104.0, span: 0.6 },
];
const SVG = "http://www.w3.org/2000/svg";
let chosen = null;

const toX = (lon) => (lon - MAP.lon0) * MAP.sx;
const toY = (lat) => (MAP.lat1 - lat) * MAP.sy;

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawMap(preset) {
  const map = $("map");
  map.textContent = "";
  const w = preset.span * MAP.sx, h = w * 380 / 640;
  const x = toX(preset.lon) - w / 2, y = toY(preset.lat) - h / 2;
  map.setAttribute("viewBox", [x, y, w, h].map((v) => v.toFixed(3)).join(" "));
  const unit = w / 640;  // one screen pixel, about
  map.append(svg("polygon", { class: "land", points: OUTLINE.map(([lon, lat]) => toX(lon) + "," + toY(lat)).join(" ") }));
  const step = preset.span > 2 ? 0.5 : 0.05;
  for (let lon = Math.ceil(MAP.lon0 / step) * step; lon <= 108.2; lon += step) {
    map.append(svg("line", { class: "grid", x1: toX(lon), x2: toX(lon), y1: 0, y2: MAP.height }));
    map.append(svg("text", { class: "grid-label", x: toX(lon) + 2 * unit, y: y + 11 * unit, "font-size": 10 * unit }, lon.toFixed(2) + "°E"));
  }
  for (let lat = Math.ceil(19.6 / step) * step; lat <= MAP.lat1; lat += step) {
    map.append(svg("line", { class: "grid", x1: 0, x2: MAP.width, y1: toY(lat), y2: toY(lat) }));
    map.append(svg("text", { class: "grid-label", x: x + 2 * unit, y: toY(lat) - 2 * unit, "font-size": 10 * unit }, lat.toFixed(2) + "°N"));
  }
  for (const p of [...CITIES, ...state.places]) {
    map.append(svg("circle", { class: "place " + p.kind, cx: toX(p.lon), cy: toY(p.lat), r: 5 * unit }));
    map.append(svg("text", { class: "place-label", x: toX(p.lon) + 7 * unit, y: toY(p.lat) + 4 * unit, "font-size": 11 * unit },
      (p.kind === "hospital" ? "✚ " : "") + p.name));
  }
  chosen = svg("circle", { class: "chosen", r: 7 * unit, cx: -100, cy: -100 });
  map.append(chosen);
  placePin();
}

function placePin() {
  const lat = parseFloat($("loc-lat").value.replace(",", "."));
  const lon = parseFloat($("loc-lon").value.replace(",", "."));
  if (!chosen || !Number.isFinite(lat) || !Number.isFinite(lon)) return;
  chosen.setAttribute("cx", toX(lon));
  chosen.setAttribute("cy", toY(lat));
}

function openLocation() {
  const p = currentPersona();
  if (!p) return;
  $("loc-lat").value = p.home[0].toFixed(5);
  $("loc-lon").value = p.home[1].toFixed(5);
  const near = PRESETS.slice(1).find((s) => Math.abs(s.lat - p.home[0]) < 0.5 && Math.abs(s.lon - p.home[1]) < 0.5);
  drawMap(near || PRESETS[0]);
  $("location-dialog").hidden = false;
}

function mapClicked(event) {
  const map = $("map");
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(map.getScreenCTM().inverse());
  $("loc-lat").value = (MAP.lat1 - point.y / MAP.sy).toFixed(5);
  $("loc-lon").value = (MAP.lon0 + point.x / MAP.sx).toFixed(5);
  placePin();
}

async function sendLocation() {
  const ok = await act("/api/location", { user_id: state.current, lat: $("loc-lat").value, lon: $("loc-lon").value });
  if (ok) $("location-dialog").hidden = true;
}

// --- wiring ------------------------------------------------------------------------------

function wire() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("composer-text");
    const text = input.value;
    input.value = "";
    sendText(text);
  });
  $("menu-button").addEventListener("click", toggleCommands);
  $("attach-button").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) uploadFile(file);
    event.target.value = "";
  });
  $("location-button").addEventListener("click", openLocation);
  $("map").addEventListener("click", mapClicked);
  $("loc-lat").addEventListener("input", placePin);
  $("loc-lon").addEventListener("input", placePin);
  $("loc-send").addEventListener("click", sendLocation);
  $("loc-cancel").addEventListener("click", () => { $("location-dialog").hidden = true; });
  $("alert-ok").addEventListener("click", () => { $("alert-dialog").hidden = true; });
  const presets = $("map-presets");
  for (const preset of PRESETS) {
    const button = el("button", null, preset.label);
    button.type = "button";
    button.addEventListener("click", () => drawMap(preset));
    presets.append(button);
  }
  // A /command in a bot message is tappable, as in Telegram.
  $("messages").addEventListener("click", (event) => {
    const cmd = event.target.closest(".cmd");
    if (cmd) sendText(cmd.textContent);
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest("#command-menu, #menu-button")) $("command-menu").hidden = true;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      $("location-dialog").hidden = true;
      $("alert-dialog").hidden = true;
      $("command-menu").hidden = true;
    }
  });
}

wire();
refreshPersonas();
setInterval(pollChat, CHAT_POLL_MS);
setInterval(refreshPersonas, LIST_POLL_MS);
