/* Kate's chat widget. Served inside /kate-widget.js after the socket.io client, which provides `io`, and
 * the app's settings, `KATE_CONFIG`. One <script src=".../kate-widget.js"></script> on any intranet page
 * adds a chat button; `data-mode="page"` shows the chat full page instead (the web app's "/").
 *
 * Talks to Rasa's socket.io channel with session persistence: the session id lives in localStorage, so
 * a reload continues the same conversation, and the transcript is kept there too (Rasa does not replay
 * it). Bot text is never parsed as HTML: it is read as a small Markdown subset (links to http(s) and mailto: only,
 * "> " quotes, "- " and "1. " items, **bold**) and built with DOM text nodes, so a page or a message holding <script> shows
 * as text. The widget lives in a shadow root so the intranet's CSS and Kate's do not touch each other.
 */
"use strict";

var script = document.currentScript;
var scriptUrl = new URL(script ? script.src : location.href, location.href);
var ORIGIN = scriptUrl.origin;
var MODE = (script && script.getAttribute("data-mode")) || "launcher";
var SOCKET_URL = (script && script.getAttribute("data-socket-url")) || KATE_CONFIG.socketUrl ||
  scriptUrl.protocol + "//" + scriptUrl.hostname + ":" + KATE_CONFIG.rasaPort;
var STORE = "kate-widget:" + SOCKET_URL;
// The employee's attributes, signed by the intranet page's server (knowledge/audience.py): Kate checks the
// signature itself, so this script only passes the token along with every message.
var EMPLOYEE_TOKEN = (script && script.getAttribute("data-employee-token")) || "";
var MAX_KEPT = 100; // transcript entries kept across reloads
var MAX_CHARS = 10000; // what the input accepts; the bot explains its own, lower limit
var TYPING_TIMEOUT_MS = 30000;

var STRINGS = {
  en: {
    title: "Kate · HR assistant", open: "Chat with Kate", close: "Close the chat",
    placeholder: "Ask an HR question…", send: "Send", typing: "Kate is typing…",
    offline: "Connection lost. Reconnecting…", helpful: "Helpful", notHelpful: "Not helpful",
    restart: "New conversation", you: "You", kate: "Kate", label: "Your message",
    welcome: "Hello! I'm Kate, your HR assistant. Ask me about leave, payroll, offices, or anything on the intranet.",
  },
  fr: {
    title: "Kate · Assistante RH", open: "Discuter avec Kate", close: "Fermer la discussion",
    placeholder: "Posez une question RH…", send: "Envoyer", typing: "Kate écrit…",
    offline: "Connexion perdue. Reconnexion…", helpful: "Utile", notHelpful: "Pas utile",
    restart: "Nouvelle conversation", you: "Vous", kate: "Kate", label: "Votre message",
    welcome: "Bonjour ! Je suis Kate, votre assistante RH. Posez-moi vos questions sur les congés, la paie, les bureaux ou tout ce qui se trouve sur l'intranet.",
  },
  ja: {
    title: "Kate・人事アシスタント", open: "Kateとチャット", close: "チャットを閉じる",
    placeholder: "人事について質問してください…", send: "送信", typing: "Kateが入力中…",
    offline: "接続が切れました。再接続しています…", helpful: "役に立った", notHelpful: "役に立たなかった",
    restart: "新しい会話", you: "あなた", kate: "Kate", label: "メッセージ",
    welcome: "こんにちは！人事アシスタントのKateです。休暇、給与、オフィス、イントラネットの内容について何でも聞いてください。",
  },
  de: {
    title: "Kate · HR-Assistentin", open: "Mit Kate chatten", close: "Chat schließen",
    placeholder: "Stellen Sie eine HR-Frage…", send: "Senden", typing: "Kate schreibt…",
    offline: "Verbindung verloren. Neuer Versuch…", helpful: "Hilfreich", notHelpful: "Nicht hilfreich",
    restart: "Neues Gespräch", you: "Sie", kate: "Kate", label: "Ihre Nachricht",
    welcome: "Hallo! Ich bin Kate, Ihre HR-Assistentin. Fragen Sie mich zu Urlaub, Gehalt, Büros oder allem, was im Intranet steht.",
  },
  es: {
    title: "Kate · Asistente de RR. HH.", open: "Chatear con Kate", close: "Cerrar el chat",
    placeholder: "Haga una pregunta de RR. HH.…", send: "Enviar", typing: "Kate está escribiendo…",
    offline: "Conexión perdida. Reconectando…", helpful: "Útil", notHelpful: "No es útil",
    restart: "Nueva conversación", you: "Usted", kate: "Kate", label: "Su mensaje",
    welcome: "¡Hola! Soy Kate, su asistente de RR. HH. Pregúnteme por vacaciones, nómina, oficinas o cualquier cosa de la intranet.",
  },
};

function pickLanguage() {
  var wanted = (script && script.getAttribute("data-lang")) ? [script.getAttribute("data-lang")] :
    (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"]);
  for (var i = 0; i < wanted.length; i++) {
    var code = String(wanted[i] || "").toLowerCase().split("-")[0];
    if (STRINGS[code]) return code;
  }
  return "en";
}
var LANG = pickLanguage();
var T = STRINGS[LANG];

// -- storage (private browsing or a full quota must not break the chat) ------------------------------------
function load() {
  try { return JSON.parse(localStorage.getItem(STORE)) || {}; } catch (e) { return {}; }
}
function save(state) {
  try { localStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* kept in memory only */ }
}
function newSessionId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
  return Date.now().toString(16) + Math.random().toString(16).slice(2);
}
var state = load();
if (!state.session || !/^[A-Za-z0-9_-]{8,64}$/.test(state.session)) state = { session: newSessionId(), log: [] };
if (!Array.isArray(state.log)) state.log = [];

// -- DOM helpers ----------------------------------------------------------------------------------------------
function el(tag, attrs, children) {
  var node = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    if (k === "text") node.textContent = attrs[k];
    else if (k === "class") node.className = attrs[k];
    else node.setAttribute(k, attrs[k]);
  });
  (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
  return node;
}

var LINK = /\[([^\[\]]*)\]\(((?:https?:\/\/|mailto:)[^\s()<>"]+)\)/g;
var BOLD = /\*\*([^*]+)\*\*/g;

/* Plain text with **bold** parts, as DOM nodes. */
function strong(parent, text) {
  var last = 0, match;
  BOLD.lastIndex = 0;
  while ((match = BOLD.exec(text)) !== null) {
    if (match.index > last) parent.appendChild(document.createTextNode(text.slice(last, match.index)));
    parent.appendChild(el("strong", { text: match[1] }));
    last = BOLD.lastIndex;
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

/* One line of bot text: plain text, **bold** and links, as DOM nodes. */
function inline(parent, text) {
  var last = 0, match;
  LINK.lastIndex = 0;
  while ((match = LINK.exec(text)) !== null) {
    if (match.index > last) strong(parent, text.slice(last, match.index));
    parent.appendChild(el("a", { href: match[2], target: "_blank", rel: "noopener noreferrer", text: match[1] || match[2] }));
    last = LINK.lastIndex;
  }
  if (last < text.length) strong(parent, text.slice(last));
}

/* Bot text (a Markdown subset) into `parent`: paragraphs, "> " quotes, "- " and "1. " lists (a list of
 * an answer's items, or the steps of a procedure), **bold**, links. */
function renderMarkdown(parent, text) {
  var list = null;
  String(text).split("\n").forEach(function (line) {
    var numbered = /^(\d{1,3})\. /.exec(line);
    if (/^- /.test(line) || numbered) {
      var tag = numbered ? "ol" : "ul";
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = el(tag);
        if (numbered && numbered[1] !== "1") list.setAttribute("start", numbered[1]);
        parent.appendChild(list);
      }
      var item = el("li");
      inline(item, line.slice(numbered ? numbered[0].length : 2));
      list.appendChild(item);
      return;
    }
    list = null;
    if (!line.trim()) return;
    var block = /^> ?/.test(line) ? el("blockquote") : el("p");
    inline(block, line.replace(/^> ?/, ""));
    parent.appendChild(block);
  });
}

// -- the widget -----------------------------------------------------------------------------------------------
var host = el("div", { id: "kate-widget", "data-mode": MODE });
var root = host.attachShadow({ mode: "open" });
root.appendChild(el("link", { rel: "stylesheet", href: ORIGIN + "/static/kate-widget.css" }));

var panelId = "kate-panel";
var launcher = el("button", { class: "launcher", type: "button", "aria-controls": panelId, "aria-expanded": "false", "aria-label": T.open }, ["💬"]);
var messages = el("div", { class: "messages", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": T.title });
var typing = el("div", { class: "typing", role: "status", hidden: "" }, [el("span", { class: "dots", "aria-hidden": "true" }, ["• • •"]), " " + T.typing]);
var banner = el("div", { class: "banner", role: "alert", hidden: "" }, [T.offline]);
var input = el("textarea", { rows: "1", maxlength: String(MAX_CHARS), placeholder: T.placeholder, "aria-label": T.label, name: "message" });
var send = el("button", { class: "send", type: "submit" }, [T.send]);
var form = el("form", { class: "composer" }, [input, send]);
var closeButton = el("button", { class: "close", type: "button", "aria-label": T.close }, ["×"]);
var restartButton = el("button", { class: "restart", type: "button" }, [T.restart]);
var header = el("header", {}, [el("h2", { text: T.title }), restartButton, closeButton]);
var panel = el("section", { id: panelId, class: "panel", role: "dialog", "aria-label": T.title, lang: LANG }, [header, banner, messages, typing, form]);
root.appendChild(launcher);
root.appendChild(panel);
if (MODE === "page") { panel.classList.add("open"); launcher.hidden = true; closeButton.hidden = true; }
else panel.setAttribute("hidden", "");

function setOpen(open) {
  if (MODE === "page") return;
  if (open) panel.removeAttribute("hidden"); else panel.setAttribute("hidden", "");
  panel.classList.toggle("open", open);
  launcher.setAttribute("aria-expanded", String(open));
  state.open = open;
  save(state);
  if (open) { input.focus(); scrollDown(); } else launcher.focus();
}
launcher.addEventListener("click", function () { setOpen(true); });
closeButton.addEventListener("click", function () { setOpen(false); });
panel.addEventListener("keydown", function (e) { if (e.key === "Escape") setOpen(false); });

function scrollDown() { messages.scrollTop = messages.scrollHeight; }

function remember(entry) {
  state.log.push(entry);
  if (state.log.length > MAX_KEPT) state.log = state.log.slice(-MAX_KEPT);
  save(state);
}

/* 👍/👎 stay visible after a vote and show which one was chosen (aria-pressed); one vote per answer. */
function voteGroup(entry, buttons) {
  var group = el("div", { class: "votes", role: "group", "aria-label": T.helpful + " / " + T.notHelpful });
  buttons.forEach(function (b) {
    var up = /"vote":"up"/.test(b.payload);
    var button = el("button", { type: "button", class: "vote", "aria-label": up ? T.helpful : T.notHelpful,
      "aria-pressed": String(entry.voted === b.payload), "data-vote": up ? "up" : "down" }, [b.title]);
    if (entry.voted) button.disabled = true;
    button.addEventListener("click", function () {
      if (entry.voted) return;
      entry.voted = b.payload;
      save(state);
      Array.prototype.forEach.call(group.children, function (other) {
        other.disabled = true;
        other.setAttribute("aria-pressed", String(other === button));
      });
      transmit(b.payload, null);
    });
    group.appendChild(button);
  });
  return group;
}

function choiceGroup(entry, buttons) {
  var group = el("div", { class: "choices", role: "group" });
  buttons.forEach(function (b) {
    var button = el("button", { type: "button", class: "choice" }, [b.title]);
    button.addEventListener("click", function () { transmit(b.payload, b.title); });
    group.appendChild(button);
  });
  return group;
}

var lastBot = null; // { entry, bubble, at }: Rasa's socket.io channel sends one reply as several messages

function show(entry) {
  var who = entry.from === "user" ? T.you : T.kate;
  var bubble = el("div", { class: "message " + entry.from });
  bubble.appendChild(el("span", { class: "sr-only", text: who + ": " }));
  var body = el("div", { class: "body" });
  if (entry.from === "user") body.textContent = entry.text;
  else renderMarkdown(body, entry.text || "");
  bubble.appendChild(body);
  var buttons = (entry.buttons || []).filter(function (b) { return b && typeof b.payload === "string"; });
  var votes = buttons.filter(function (b) { return b.payload.indexOf("/feedback") === 0; });
  var others = buttons.filter(function (b) { return b.payload.indexOf("/feedback") !== 0; });
  if (votes.length) bubble.appendChild(voteGroup(entry, votes));
  if (others.length) bubble.appendChild(choiceGroup(entry, others));
  messages.appendChild(bubble);
  scrollDown();
  return bubble;
}

/* Rasa splits a reply at blank lines into separate events (the buttons on the last); parts arriving
   together are put back into one bubble, as the action wrote them. */
var MERGE_WINDOW_MS = 400;
function showBot(entry) {
  var now = Date.now();
  if (lastBot && now - lastBot.at < MERGE_WINDOW_MS && !(lastBot.entry.buttons || []).length &&
      lastBot.bubble === messages.lastElementChild) {
    lastBot.entry.text += "\n\n" + entry.text;
    lastBot.entry.buttons = entry.buttons;
    save(state);
    messages.removeChild(lastBot.bubble);
    lastBot = { entry: lastBot.entry, bubble: show(lastBot.entry), at: now };
    return;
  }
  remember(entry);
  lastBot = { entry: entry, bubble: show(entry), at: now };
}

// -- typing indicator -----------------------------------------------------------------------------------------
var typingTimer = null;
function setTyping(on) {
  clearTimeout(typingTimer);
  if (on) { typing.removeAttribute("hidden"); typingTimer = setTimeout(function () { setTyping(false); }, TYPING_TIMEOUT_MS); }
  else typing.setAttribute("hidden", "");
}

// -- the connection -------------------------------------------------------------------------------------------
var socket = io(SOCKET_URL, { transports: ["websocket", "polling"], reconnection: true, reconnectionDelayMax: 10000 });

socket.on("connect", function () {
  banner.setAttribute("hidden", "");
  host.setAttribute("data-connected", "true");
  socket.emit("session_request", { session_id: state.session });
});
socket.on("disconnect", function () {
  host.setAttribute("data-connected", "false");
  banner.removeAttribute("hidden");
});
socket.on("connect_error", function () {
  host.setAttribute("data-connected", "false");
  banner.removeAttribute("hidden");
});
socket.on("bot_uttered", function (message) {
  if (!message || typeof message !== "object") return;
  setTyping(false);
  var buttons = (message.quick_replies || message.buttons || []).slice(0, 20).map(function (b) {
    return { title: String(b.title || ""), payload: String(b.payload || "") };
  });
  var entry = { from: "bot", text: typeof message.text === "string" ? message.text : "", buttons: buttons };
  if (!entry.text && !buttons.length) return;
  showBot(entry);
});

/* A message to Rasa; `shown` is what the transcript shows for it (null: nothing, as for a vote). */
function transmit(message, shown) {
  if (shown !== null) {
    var entry = { from: "user", text: shown };
    remember(entry);
    show(entry);
  }
  setTyping(true);
  var sent = { message: message, session_id: state.session };
  if (EMPLOYEE_TOKEN) sent.metadata = { employee_token: EMPLOYEE_TOKEN };
  socket.emit("user_uttered", sent);
}

form.addEventListener("submit", function (e) {
  e.preventDefault();
  var text = input.value;
  if (!text.trim()) { input.focus(); return; }
  input.value = "";
  transmit(text, text);
  input.focus();
});
input.addEventListener("keydown", function (e) {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
});
restartButton.addEventListener("click", function () {
  state = { session: newSessionId(), log: [], open: state.open };
  save(state);
  while (messages.firstChild) messages.removeChild(messages.firstChild);
  show({ from: "bot", text: T.welcome });
  socket.emit("session_request", { session_id: state.session });
  input.focus();
});

// -- start ----------------------------------------------------------------------------------------------------
show({ from: "bot", text: T.welcome });
state.log.forEach(show);
if (MODE !== "page" && state.open) setOpen(true);
function attach() {
  var target = MODE === "page" ? (document.getElementById("kate-chat") || document.body) : document.body;
  target.appendChild(host);
}
if (document.body) attach(); else document.addEventListener("DOMContentLoaded", attach);
