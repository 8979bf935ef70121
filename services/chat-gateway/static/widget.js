/*
 * Careline chat widget: one file, no framework, no build step.
 *
 *   <script src="https://GATEWAY/widget.js" data-key="WIDGET_KEY" defer></script>
 *
 * Optional attributes: data-lang="en|es" (else the page's <html lang>, else the browser's; the
 * member can switch in the form), data-gateway="https://GATEWAY/" (else where this file came from).
 *
 * It speaks the member protocol v1 of docs/chat-protocol.md over one WebSocket. The resume token
 * is kept in sessionStorage so a reload or a dropped connection continues the same chat; every
 * message carries a client id, so a message re-sent after a reconnect is stored and shown once.
 * When chat is closed, or the member prefers it, it offers the contact form (POST v1/contact);
 * when chat is closed and the after_hours frame says so, a call-back request (POST v1/callback).
 * Accessibility: a labelled dialog; messages in an aria-live log; queue status in role=status;
 * the emergency banner in role=alert; every control labelled; Escape closes the panel and focus
 * returns to the launcher; Enter sends, Shift+Enter starts a new line.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) {
    return;
  }

  /* Limits of docs/chat-protocol.md and of POST v1/contact, checked here so the member learns
     before sending; the server enforces them. */
  var MAX_TEXT_CHARS = 2000;
  var MAX_FIRST_NAME_CHARS = 64;
  var MAX_CONTACT_NAME_CHARS = 100;
  var MAX_CONTACT_MESSAGE_CHARS = 10000;
  var MAX_EMAIL_CHARS = 254;
  var MAX_PHONE_CHARS = 32;
  var MIN_PHONE_DIGITS = 7;
  var MAX_PHONE_DIGITS = 15;
  /* Reconnect backoff after an unexpected close: doubles from the first delay to the last. */
  var RECONNECT_FIRST_MS = 500;
  var RECONNECT_MAX_MS = 8000;
  /* A typing notice at most this often; the agent's notice is shown this long. */
  var TYPING_EVERY_MS = 3000;
  var TYPING_SHOWN_MS = 6000;
  /* Close codes after which reconnecting cannot help (docs/chat-protocol.md, close codes). */
  var CLOSE_UNKNOWN_KEY = 4001;
  var CLOSE_ORIGIN = 4003;
  var CLOSE_RESUME_UNKNOWN = 4004;
  var CLOSE_FOR_GOOD = [1003, 1009, CLOSE_UNKNOWN_KEY, CLOSE_ORIGIN, 4008];

  var STRINGS = {
    en: {
      launcher: "Chat with us",
      title: "Chat with us",
      close: "Close chat",
      language: "Language",
      firstName: "First name (optional)",
      topic: "What is it about?",
      firstMessage: "How can we help?",
      start: "Start chat",
      preferContact: "Email us instead",
      message: "Message",
      send: "Send",
      end: "End chat",
      you: "You",
      agent: "Agent",
      transcript: "Conversation",
      connecting: "Connecting…",
      reconnecting: "Connection lost. Reconnecting…",
      waiting: "Waiting for an agent…",
      queuedAt: function (position) {
        return position === 1 ? "You are next in line." : "You are number " + position + " in line.";
      },
      eta: function (secs) {
        var minutes = Math.max(1, Math.round(secs / 60));
        return "Estimated wait: " + (minutes === 1 ? "1 minute." : "about " + minutes + " minutes.");
      },
      assigned: function (name) {
        return name ? name + " has joined the chat." : "An agent has joined the chat.";
      },
      typing: function (name) {
        return (name || "The agent") + " is typing…";
      },
      ended: "The chat has ended. Thank you for contacting us.",
      abandoned: "The chat ended because the connection was lost for too long.",
      transferredExternal: "Your chat was transferred. Please follow the agent's instructions.",
      afterHoursTitle: "We are closed right now",
      afterHoursQueued: "Your chat is saved and an agent will answer when we open. You can also:",
      emailUs: "Email us at ",
      portal: "Use the member portal (open 24 hours)",
      contactUs: "Contact us",
      callbackUs: "Request a call-back",
      callbackTitle: "Request a call-back",
      callbackIntro: "Leave your number and we will call you back when we open.",
      phone: "Phone number",
      callbackSubmit: "Call me back",
      callbackSent: "Thank you. We will call you back when we open.",
      badPhone: "Please enter a phone number like +1 555 010 1234.",
      emergency: function (call, crisis) {
        return [
          "If this is a medical emergency, call ",
          { tel: call },
          " now. If you are in crisis or thinking about suicide, call or text ",
          { tel: crisis },
          ".",
        ];
      },
      contactTitle: "Contact us",
      contactIntro: "We answer by email. This form is open 24 hours a day.",
      name: "Name (optional)",
      email: "Your email address",
      contactMessage: "Message",
      submit: "Send message",
      back: "Back",
      contactSent: "Thank you. We received your message and will answer by email.",
      required: "Please fill in this field.",
      badEmail: "Please enter an email address like name@example.com.",
      tooLong: function (max) {
        return "Please keep this under " + max + " characters.";
      },
      notSent: "This message was not sent: ",
      failed: "Something went wrong. Please try again.",
      unavailable: "We cannot reach the chat service right now. Please try again in a moment.",
      chatUnavailable: "Chat is not available on this page. You can still send us a message.",
      expired: "This chat has expired. You can start a new one.",
      newChat: "Start a new chat",
      topics: {
        billing: "Billing",
        claims: "Claims",
        coverage: "Coverage",
        appointments: "Appointments",
        provider_search: "Find a doctor",
        technical: "Website or login problem",
        other: "Something else",
      },
    },
    es: {
      launcher: "Chatee con nosotros",
      title: "Chatee con nosotros",
      close: "Cerrar el chat",
      language: "Idioma",
      firstName: "Nombre (opcional)",
      topic: "¿Sobre qué es?",
      firstMessage: "¿Cómo podemos ayudarle?",
      start: "Iniciar chat",
      preferContact: "Prefiero escribir un correo",
      message: "Mensaje",
      send: "Enviar",
      end: "Terminar chat",
      you: "Usted",
      agent: "Agente",
      transcript: "Conversación",
      connecting: "Conectando…",
      reconnecting: "Se perdió la conexión. Reconectando…",
      waiting: "Esperando a un agente…",
      queuedAt: function (position) {
        return position === 1 ? "Usted es el siguiente." : "Usted es el número " + position + " en la fila.";
      },
      eta: function (secs) {
        var minutes = Math.max(1, Math.round(secs / 60));
        return "Espera estimada: " + (minutes === 1 ? "1 minuto." : "unos " + minutes + " minutos.");
      },
      assigned: function (name) {
        return name ? name + " se unió al chat." : "Un agente se unió al chat.";
      },
      typing: function (name) {
        return (name || "El agente") + " está escribiendo…";
      },
      ended: "El chat terminó. Gracias por comunicarse con nosotros.",
      abandoned: "El chat terminó porque la conexión se perdió por mucho tiempo.",
      transferredExternal: "Su chat fue transferido. Siga las instrucciones del agente.",
      afterHoursTitle: "Ahora estamos cerrados",
      afterHoursQueued: "Su chat quedó guardado y un agente le responderá cuando abramos. También puede:",
      emailUs: "Escribirnos a ",
      portal: "Usar el portal para miembros (abierto las 24 horas)",
      contactUs: "Contáctenos",
      callbackUs: "Pedir que le llamemos",
      callbackTitle: "Pedir que le llamemos",
      callbackIntro: "Déjenos su número y le llamaremos cuando abramos.",
      phone: "Número de teléfono",
      callbackSubmit: "Llámenme",
      callbackSent: "Gracias. Le llamaremos cuando abramos.",
      badPhone: "Escriba un número de teléfono como +1 555 010 1234.",
      emergency: function (call, crisis) {
        return [
          "Si es una emergencia médica, llame al ",
          { tel: call },
          " ahora. Si está en crisis o piensa en el suicidio, llame o envíe un texto al ",
          { tel: crisis },
          ".",
        ];
      },
      contactTitle: "Contáctenos",
      contactIntro: "Le respondemos por correo electrónico. Este formulario está abierto las 24 horas.",
      name: "Nombre (opcional)",
      email: "Su correo electrónico",
      contactMessage: "Mensaje",
      submit: "Enviar mensaje",
      back: "Volver",
      contactSent: "Gracias. Recibimos su mensaje y le responderemos por correo electrónico.",
      required: "Por favor complete este campo.",
      badEmail: "Escriba un correo electrónico como nombre@ejemplo.com.",
      tooLong: function (max) {
        return "Por favor use menos de " + max + " caracteres.";
      },
      notSent: "Este mensaje no se envió: ",
      failed: "Algo salió mal. Por favor intente de nuevo.",
      unavailable: "No podemos comunicarnos con el servicio de chat. Intente de nuevo en un momento.",
      chatUnavailable: "El chat no está disponible en esta página. Todavía puede enviarnos un mensaje.",
      expired: "Este chat expiró. Puede iniciar uno nuevo.",
      newChat: "Iniciar otro chat",
      topics: {
        billing: "Facturación",
        claims: "Reclamaciones",
        coverage: "Cobertura",
        appointments: "Citas",
        provider_search: "Buscar un médico",
        technical: "Problema con el sitio o la contraseña",
        other: "Otra cosa",
      },
    },
  };
  var LANGUAGE_NAMES = { en: "English", es: "Español" };

  function pickLanguage() {
    var candidates = [script.getAttribute("data-lang"), document.documentElement.getAttribute("lang"), navigator.language];
    for (var i = 0; i < candidates.length; i++) {
      var code = (candidates[i] || "").toLowerCase().slice(0, 2);
      if (STRINGS[code]) {
        return code;
      }
    }
    return "en";
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return (b + 0x100).toString(16).slice(1);
      })
      .join("");
  }

  /* Builds an element. Text is only ever set as text, never parsed as HTML. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") {
        node.textContent = attrs[name];
      } else if (name === "hidden") {
        node.hidden = attrs[name];
      } else {
        node.setAttribute(name, attrs[name]);
      }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  var widgetKey = script.getAttribute("data-key") || "";
  var gateway = new URL(script.getAttribute("data-gateway") || script.src, window.location.href);
  var lang = pickLanguage();
  var t = STRINGS[lang];
  var storageKey = "careline-chat:" + widgetKey;
  var uid = "cl-" + Math.random().toString(36).slice(2, 8);

  /* Every element whose text depends on the language, re-rendered by setLanguage. */
  var localized = [];
  function say(node, render) {
    localized.push({ node: node, render: render });
    render(node);
    return node;
  }
  function text(key) {
    return function (node) {
      node.textContent = t[key];
    };
  }

  function setLanguage(code) {
    lang = code;
    t = STRINGS[code];
    root.setAttribute("lang", code);
    localized.forEach(function (entry) {
      entry.render(entry.node);
    });
  }

  /* ---------- DOM ---------- */

  var root = el("div", { class: "cl-widget", lang: lang });
  var launcher = say(
    el("button", { type: "button", class: "cl-button cl-launcher", "aria-haspopup": "dialog", "aria-expanded": "false", "aria-controls": uid + "-panel" }),
    text("launcher")
  );
  var heading = el("h2", { id: uid + "-title", tabindex: "-1" });
  var closeButton = say(el("button", { type: "button", class: "cl-button cl-close", text: "×" }), function (node) {
    node.setAttribute("aria-label", t.close);
  });
  var panel = el("section", { id: uid + "-panel", class: "cl-panel", role: "dialog", "aria-labelledby": heading.id, hidden: true }, [
    el("div", { class: "cl-header" }, [heading, closeButton]),
  ]);
  var body = el("div", { class: "cl-body" });
  panel.appendChild(body);
  root.appendChild(panel);
  root.appendChild(launcher);

  /* A labelled control with its own error line, announced through aria-describedby. */
  function field(id, labelKey, control) {
    control.id = uid + "-" + id;
    var label = say(el("label", { for: control.id }), text(labelKey));
    var error = el("p", { id: control.id + "-error", class: "cl-error", hidden: true });
    control.setAttribute("aria-describedby", error.id);
    return { wrap: el("div", {}, [label, control, error]), control: control, error: error };
  }

  function topicSelect() {
    var select = el("select", { name: "topic" });
    Object.keys(STRINGS.en.topics).forEach(function (topic) {
      select.appendChild(
        say(el("option", { value: topic }), function (node) {
          node.textContent = t.topics[topic];
        })
      );
    });
    return select;
  }

  function showError(f, message) {
    f.error.textContent = message;
    f.error.hidden = !message;
    if (message) {
      f.control.setAttribute("aria-invalid", "true");
    } else {
      f.control.removeAttribute("aria-invalid");
    }
    return !message;
  }

  function checkLength(f, max, required) {
    var value = f.control.value.trim();
    if (required && !value) {
      return showError(f, t.required);
    }
    return showError(f, value.length > max ? t.tooLong(max) : "");
  }

  function focusFirstInvalid(fields) {
    var bad = fields.filter(function (f) {
      return !f.error.hidden;
    })[0];
    if (bad) {
      bad.control.focus();
    }
    return !bad;
  }

  /* Start view: language, who, what about, first message. */
  var languageSelect = el("select", { name: "language" });
  Object.keys(STRINGS).forEach(function (code) {
    languageSelect.appendChild(el("option", { value: code, lang: code, text: LANGUAGE_NAMES[code] }));
  });
  languageSelect.value = lang;
  var startLanguage = field("language", "language", languageSelect);
  var startName = field("first-name", "firstName", el("input", { type: "text", name: "first_name", autocomplete: "given-name", maxlength: String(MAX_FIRST_NAME_CHARS) }));
  var startTopic = field("topic", "topic", topicSelect());
  startTopic.control.value = "other";
  var startMessage = field("first-message", "firstMessage", el("textarea", { name: "message", rows: "3", required: "" }));
  var startButton = say(el("button", { type: "submit", class: "cl-button" }), text("start"));
  var preferContactButton = say(el("button", { type: "button", class: "cl-button cl-button-secondary" }), text("preferContact"));
  var startForm = el("form", { class: "cl-form", novalidate: "" }, [
    startLanguage.wrap,
    startName.wrap,
    startTopic.wrap,
    startMessage.wrap,
    el("div", { class: "cl-actions" }, [startButton, preferContactButton]),
  ]);

  /* Chat view: emergency banner, queue status, after-hours box, transcript, typing. */
  var emergency = el("div", { class: "cl-emergency", role: "alert", hidden: true });
  var status = el("p", { class: "cl-status", role: "status", "aria-live": "polite" });
  var afterHours = el("div", { class: "cl-after-hours", hidden: true });
  var log = say(el("ol", { class: "cl-log", role: "log", "aria-live": "polite" }), function (node) {
    node.setAttribute("aria-label", t.transcript);
  });
  var typing = el("p", { class: "cl-typing" });
  var chatView = el("div", { hidden: true }, [emergency, status, afterHours, log, typing]);
  var composerInput = el("textarea", { id: uid + "-message", rows: "2", name: "message" });
  var sendButton = say(el("button", { type: "submit", class: "cl-button" }), text("send"));
  var composer = el("form", { class: "cl-composer", hidden: true }, [
    say(el("label", { for: composerInput.id, class: "cl-visually-hidden" }), text("message")),
    composerInput,
    sendButton,
  ]);
  var endButton = say(el("button", { type: "button", class: "cl-button cl-button-secondary" }), text("end"));
  var newChatButton = say(el("button", { type: "button", class: "cl-button cl-button-secondary", hidden: true }), text("newChat"));
  var footer = el("div", { class: "cl-footer", hidden: true }, [endButton, newChatButton]);

  /* Contact view: the fields of contact.html, sent as JSON. */
  var contactName = field("name", "name", el("input", { type: "text", name: "name", autocomplete: "name", maxlength: String(MAX_CONTACT_NAME_CHARS) }));
  var contactEmail = field("email", "email", el("input", { type: "email", name: "email", autocomplete: "email", required: "", maxlength: String(MAX_EMAIL_CHARS) }));
  var contactTopic = field("contact-topic", "topic", topicSelect());
  contactTopic.control.value = "other";
  var contactMessage = field("contact-message", "contactMessage", el("textarea", { name: "message", rows: "5", required: "" }));
  var contactError = el("p", { class: "cl-error", role: "alert", hidden: true });
  var contactDone = el("p", { class: "cl-done", role: "status", tabindex: "-1" });
  var contactSubmit = say(el("button", { type: "submit", class: "cl-button" }), text("submit"));
  var contactBack = say(el("button", { type: "button", class: "cl-button cl-button-secondary" }), text("back"));
  var contactForm = el("form", { class: "cl-form", novalidate: "" }, [
    say(el("p", { class: "cl-hint" }), text("contactIntro")),
    contactName.wrap,
    contactEmail.wrap,
    contactTopic.wrap,
    contactMessage.wrap,
    contactError,
    el("div", { class: "cl-actions" }, [contactSubmit, contactBack]),
  ]);
  var contactView = el("div", { hidden: true }, [contactForm, contactDone]);

  /* Call-back view: the number to call, sent as JSON with the widget's language. */
  var callbackPhone = field("phone", "phone", el("input", { type: "tel", name: "phone", autocomplete: "tel", required: "", maxlength: String(MAX_PHONE_CHARS) }));
  var callbackError = el("p", { class: "cl-error", role: "alert", hidden: true });
  var callbackDone = el("p", { class: "cl-done", role: "status", tabindex: "-1" });
  var callbackSubmit = say(el("button", { type: "submit", class: "cl-button" }), text("callbackSubmit"));
  var callbackBack = say(el("button", { type: "button", class: "cl-button cl-button-secondary" }), text("back"));
  var callbackForm = el("form", { class: "cl-form", novalidate: "" }, [
    say(el("p", { class: "cl-hint" }), text("callbackIntro")),
    callbackPhone.wrap,
    callbackError,
    el("div", { class: "cl-actions" }, [callbackSubmit, callbackBack]),
  ]);
  var callbackView = el("div", { hidden: true }, [callbackForm, callbackDone]);

  body.appendChild(startForm);
  body.appendChild(chatView);
  body.appendChild(contactView);
  body.appendChild(callbackView);
  panel.appendChild(composer);
  panel.appendChild(footer);

  /* ---------- views and focus ---------- */

  var view = "start";
  function viewTitle() {
    return { contact: t.contactTitle, callback: t.callbackTitle }[view] || t.title;
  }
  say(heading, function (node) {
    node.textContent = viewTitle();
  });

  function chatOpen() {
    return session.token !== null && !session.over;
  }

  function showView(name, focusTarget) {
    view = name;
    startForm.hidden = name !== "start";
    chatView.hidden = name !== "chat";
    contactView.hidden = name !== "contact";
    callbackView.hidden = name !== "callback";
    composer.hidden = name !== "chat" || session.over;
    footer.hidden = name !== "chat";
    heading.textContent = viewTitle();
    if (!panel.hidden && focusTarget) {
      focusTarget.focus();
    }
  }

  function defaultFocus() {
    if (view === "start") {
      return languageSelect;
    }
    if (view === "contact") {
      return contactForm.hidden ? contactDone : contactEmail.control;
    }
    if (view === "callback") {
      return callbackForm.hidden ? callbackDone : callbackPhone.control;
    }
    return composer.hidden ? (newChatButton.hidden ? heading : newChatButton) : composerInput;
  }

  function open() {
    panel.hidden = false;
    launcher.hidden = true;
    launcher.setAttribute("aria-expanded", "true");
    defaultFocus().focus();
    markRead();
  }

  function close() {
    panel.hidden = true;
    launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", open);
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  languageSelect.addEventListener("change", function () {
    setLanguage(languageSelect.value);
  });

  /* ---------- transcript ---------- */

  /* Lines on screen by key ("c:" + client id for the member's, "m:" + message id otherwise): a
     message re-sent after a reconnect, or replayed on resume, is already there. */
  var shown = {};

  /* Pending lines (the member's, not yet stored) stay below everything the server confirmed, so
     a transcript replayed after a reload lands above them, in transcript order. */
  function addLine(key, from, who, content, pending) {
    if (key && shown[key]) {
      return shown[key];
    }
    var item = el("li", { class: "cl-from-" + from + (pending ? " cl-pending" : "") }, [
      el("span", { class: "cl-visually-hidden", text: who ? who + ": " : "" }),
      content,
    ]);
    if (key) {
      shown[key] = item;
    }
    log.insertBefore(item, pending ? null : log.querySelector(".cl-pending"));
    body.scrollTop = body.scrollHeight;
    return item;
  }

  function pendingLine(frame) {
    addLine("c:" + frame.client_id, "member", t.you, frame.text, true);
  }

  function systemLine(content) {
    addLine(null, "system", "", content, false);
  }

  /* ---------- session ---------- */

  var session = {
    socket: null,
    token: null,
    agentName: "",
    /* Whether the "agent joined" line of the current agent is on screen. */
    joinedShown: false,
    over: false,
    retryMs: RECONNECT_FIRST_MS,
    retryTimer: null,
    typingTimer: null,
    /* Message frames sent and not yet echoed back, oldest first: re-sent after a reconnect. */
    unacked: [],
    /* The start frame until the chat exists (re-sent if the first connection drops). */
    start: null,
    /* Id of the last transcript message shown: where a resume continues. */
    lastId: null,
    lastAgentId: null,
    lastTypingAt: 0,
  };

  function saveSession() {
    try {
      if (chatOpen() || (session.start && !session.over)) {
        window.sessionStorage.setItem(
          storageKey,
          JSON.stringify({ token: session.token, start: session.start, unacked: session.unacked, lang: lang })
        );
      } else {
        window.sessionStorage.removeItem(storageKey);
      }
    } catch (ignored) {
      /* Storage may be disabled: the chat still works, it just does not survive a reload. */
    }
  }

  function loadSession() {
    try {
      return JSON.parse(window.sessionStorage.getItem(storageKey) || "null");
    } catch (ignored) {
      return null;
    }
  }

  function sendFrame(frame) {
    if (session.socket && session.socket.readyState === WebSocket.OPEN) {
      session.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function connect() {
    window.clearTimeout(session.retryTimer);
    var url = new URL("v1/chat/ws", gateway);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(url.href);
    session.socket = socket;
    socket.addEventListener("open", function () {
      if (session.token) {
        var resume = { type: "resume", token: session.token };
        if (session.lastId) {
          resume.after = session.lastId;
        }
        sendFrame(resume);
      } else {
        sendFrame(session.start);
      }
    });
    socket.addEventListener("message", function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (ignored) {
        return;
      }
      if (frame && typeof frame.type === "string") {
        onFrame(frame);
      }
    });
    socket.addEventListener("close", function (event) {
      if (session.socket !== socket) {
        return;
      }
      session.socket = null;
      onClose(event.code);
    });
  }

  function onClose(code) {
    if (session.over || code === 1000) {
      return;
    }
    if (code === CLOSE_RESUME_UNKNOWN) {
      finish(t.expired);
      return;
    }
    if (CLOSE_FOR_GOOD.indexOf(code) >= 0) {
      chatUnavailable();
      return;
    }
    /* 1001 (replica going away), 1006 (dropped), 1011, 4013, 4029: reconnect and resume. */
    status.textContent = t.reconnecting;
    session.retryTimer = window.setTimeout(connect, session.retryMs);
    session.retryMs = Math.min(session.retryMs * 2, RECONNECT_MAX_MS);
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "started":
        session.token = frame.resume_token;
        session.retryMs = RECONNECT_FIRST_MS;
        status.textContent = t.waiting;
        saveSession();
        if (frame.resumed) {
          session.unacked.forEach(sendFrame);
        }
        break;
      case "queued":
        status.textContent =
          (typeof frame.position === "number" ? t.queuedAt(frame.position) : t.waiting) +
          (typeof frame.eta_seconds === "number" ? " " + t.eta(frame.eta_seconds) : "");
        break;
      case "assigned":
        status.textContent = "";
        /* A resume replays the transcript's "joined" entry and then states who is assigned now:
           the same agent again is not news. */
        if (session.joinedShown && (frame.agent_first_name || "") === session.agentName) {
          break;
        }
        session.agentName = frame.agent_first_name || "";
        session.joinedShown = true;
        systemLine(t.assigned(session.agentName));
        break;
      case "message":
        onMessage(frame);
        break;
      case "typing":
        typing.textContent = t.typing(session.agentName);
        window.clearTimeout(session.typingTimer);
        session.typingTimer = window.setTimeout(function () {
          typing.textContent = "";
        }, TYPING_SHOWN_MS);
        break;
      case "after_hours":
        showAfterHours(frame);
        break;
      case "emergency":
        showEmergency(frame);
        break;
      case "closed":
        finish({ member_ended: t.ended, agent_ended: t.ended, abandoned: t.abandoned, transferred_external: t.transferredExternal }[frame.reason] || t.ended);
        break;
      case "error":
        onError(frame);
        break;
      default:
        /* Unknown frame types are additions of a later v1: ignored, as the protocol asks. */
        break;
    }
  }

  function onMessage(frame) {
    session.lastId = frame.id;
    if (frame.from === "member") {
      session.unacked = session.unacked.filter(function (sent) {
        return sent.client_id !== frame.client_id;
      });
      saveSession();
      addLine("c:" + frame.client_id, "member", t.you, frame.text, false).classList.remove("cl-pending");
      return;
    }
    typing.textContent = "";
    addLine("m:" + frame.id, "agent", session.agentName || t.agent, frame.text, false);
    session.lastAgentId = frame.id;
    markRead();
  }

  /* Tells the agent the member saw their messages, when the panel is open. */
  function markRead() {
    if (!panel.hidden && session.lastAgentId) {
      sendFrame({ type: "read", up_to: session.lastAgentId });
    }
  }

  function onError(frame) {
    var reason = {
      too_long: t.tooLong(MAX_TEXT_CHARS),
      rate_limited: t.failed,
      unavailable: t.unavailable,
    }[frame.code] || t.failed;
    if (frame.client_id && shown["c:" + frame.client_id]) {
      /* That message will never be stored: stop re-sending it and say so beside it. */
      session.unacked = session.unacked.filter(function (sent) {
        return sent.client_id !== frame.client_id;
      });
      saveSession();
      var line = shown["c:" + frame.client_id];
      line.classList.remove("cl-pending");
      line.appendChild(el("span", { class: "cl-error", text: " " + t.notSent + reason }));
      return;
    }
    status.textContent = reason;
  }

  function telLink(number) {
    return el("a", { href: "tel:" + number, text: number });
  }

  function showEmergency(frame) {
    var call = /^[0-9]{3,6}$/.test(frame.call || "") ? frame.call : "911";
    var crisis = /^[0-9]{3,6}$/.test(frame.crisis_line || "") ? frame.crisis_line : "988";
    emergency.replaceChildren();
    t.emergency(call, crisis).forEach(function (part) {
      emergency.appendChild(typeof part === "string" ? document.createTextNode(part) : telLink(part.tel));
    });
    emergency.hidden = false;
  }

  function showAfterHours(frame) {
    afterHours.replaceChildren(el("h3", { text: t.afterHoursTitle }));
    if (frame.message) {
      afterHours.appendChild(el("p", { text: frame.message }));
    }
    afterHours.appendChild(el("p", { text: t.afterHoursQueued }));
    var ways = el("ul");
    if (frame.contact_email) {
      ways.appendChild(el("li", {}, [t.emailUs, el("a", { href: "mailto:" + frame.contact_email, text: frame.contact_email })]));
    }
    if (frame.portal_url && /^https?:\/\//i.test(frame.portal_url)) {
      ways.appendChild(el("li", {}, [el("a", { href: frame.portal_url, target: "_blank", rel: "noopener", text: t.portal })]));
    }
    afterHours.appendChild(ways);
    var contactButton = el("button", { type: "button", class: "cl-button", text: t.contactUs });
    contactButton.addEventListener("click", showContact);
    afterHours.appendChild(contactButton);
    if (frame.callback === true) {
      var callbackButton = el("button", { type: "button", class: "cl-button", text: t.callbackUs });
      callbackButton.addEventListener("click", showCallback);
      afterHours.appendChild(callbackButton);
    }
    afterHours.hidden = false;
  }

  function chatUnavailable() {
    session.over = true;
    session.token = null;
    session.start = null;
    saveSession();
    showContact();
    contactError.textContent = t.chatUnavailable;
    contactError.hidden = false;
  }

  /* The chat is over: say why, offer a new one. */
  function finish(message) {
    session.over = true;
    session.token = null;
    session.start = null;
    session.unacked = [];
    window.clearTimeout(session.retryTimer);
    saveSession();
    typing.textContent = "";
    status.textContent = "";
    systemLine(message);
    composer.hidden = true;
    endButton.hidden = true;
    newChatButton.hidden = false;
    if (session.socket) {
      session.socket.close(1000);
    }
    if (!panel.hidden && view === "chat") {
      newChatButton.focus();
    }
  }

  function resetSession() {
    session.over = false;
    session.token = null;
    session.start = null;
    session.agentName = "";
    session.joinedShown = false;
    session.unacked = [];
    session.lastId = null;
    session.lastAgentId = null;
    shown = {};
    log.replaceChildren();
    afterHours.replaceChildren();
    afterHours.hidden = true;
    emergency.hidden = true;
    endButton.hidden = false;
    newChatButton.hidden = true;
    startMessage.control.value = "";
    showView("start", languageSelect);
  }

  startForm.addEventListener("submit", function (event) {
    event.preventDefault();
    checkLength(startName, MAX_FIRST_NAME_CHARS, false);
    checkLength(startMessage, MAX_TEXT_CHARS, true);
    if (!focusFirstInvalid([startName, startMessage])) {
      return;
    }
    var firstText = startMessage.control.value.trim();
    var firstId = newClientId();
    session.start = {
      type: "start",
      key: widgetKey,
      language: lang,
      topic: startTopic.control.value,
      first_name: startName.control.value.trim(),
      text: firstText,
      client_id: firstId,
    };
    session.over = false;
    saveSession();
    status.textContent = t.connecting;
    showView("chat", composerInput);
    pendingLine(session.start);
    connect();
  });

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    sendComposed();
  });

  composerInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendComposed();
    }
  });

  composerInput.addEventListener("input", function () {
    var now = Date.now();
    if (now - session.lastTypingAt > TYPING_EVERY_MS) {
      session.lastTypingAt = now;
      sendFrame({ type: "typing" });
    }
  });

  function sendComposed() {
    var value = composerInput.value.trim();
    if (!value) {
      return;
    }
    if (value.length > MAX_TEXT_CHARS) {
      status.textContent = t.tooLong(MAX_TEXT_CHARS);
      return;
    }
    var frame = { type: "message", client_id: newClientId(), text: value };
    session.unacked.push(frame);
    saveSession();
    pendingLine(frame);
    composerInput.value = "";
    session.lastTypingAt = 0;
    /* Not connected: it stays in unacked and goes out after the resume. */
    sendFrame(frame);
    composerInput.focus();
  }

  endButton.addEventListener("click", function () {
    sendFrame({ type: "end" });
    finish(t.ended);
  });
  newChatButton.addEventListener("click", resetSession);
  preferContactButton.addEventListener("click", showContact);
  function back() {
    if (chatOpen() || session.over) {
      showView("chat", defaultFocus());
    } else {
      showView("start", languageSelect);
    }
  }
  contactBack.addEventListener("click", back);
  callbackBack.addEventListener("click", back);

  /* ---------- contact form ---------- */

  function showContact() {
    contactDone.textContent = "";
    contactForm.hidden = false;
    contactError.hidden = true;
    showView("contact", contactEmail.control);
  }

  /* The same shape the server checks (local@domain.tld, no spaces or brackets); the server
     has the last word. */
  function plausibleEmail(value) {
    return /^[^\s@<>()",;:\\]+@[^\s@<>()",;:\\]+\.[^\s@<>()",;:\\]+$/.test(value);
  }

  /* Posts a form's JSON to the gateway at `path`; resolves to {ok, json} (json {} when the answer
     is not JSON). The key is also in the query: the browser's CORS preflight carries no body. */
  function postForm(path, body) {
    var target = new URL(path, gateway);
    target.searchParams.set("key", widgetKey);
    return fetch(target.href, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(
        function (json) {
          return { ok: response.ok, json: json || {} };
        },
        function () {
          return { ok: false, json: {} };
        }
      );
    });
  }

  contactForm.addEventListener("submit", function (event) {
    event.preventDefault();
    contactError.hidden = true;
    var email = contactEmail.control.value.trim();
    checkLength(contactName, MAX_CONTACT_NAME_CHARS, false);
    if (!email) {
      showError(contactEmail, t.required);
    } else {
      showError(contactEmail, email.length <= MAX_EMAIL_CHARS && plausibleEmail(email) ? "" : t.badEmail);
    }
    checkLength(contactMessage, MAX_CONTACT_MESSAGE_CHARS, true);
    if (!focusFirstInvalid([contactName, contactEmail, contactMessage])) {
      return;
    }
    contactSubmit.disabled = true;
    postForm("v1/contact", {
      key: widgetKey,
      language: lang,
      name: contactName.control.value.trim(),
      email: email,
      topic: contactTopic.control.value,
      message: contactMessage.control.value.trim(),
      submission_id: newClientId(),
    })
      .then(function (result) {
        contactSubmit.disabled = false;
        if (result.ok) {
          contactForm.hidden = true;
          contactDone.textContent = t.contactSent;
          contactDone.focus();
          return;
        }
        var target = { name: contactName, email: contactEmail, message: contactMessage }[result.json.field];
        if (target) {
          showError(target, result.json.message || t.failed);
          target.control.focus();
        } else {
          contactError.textContent = result.json.message || t.failed;
          contactError.hidden = false;
        }
      })
      .catch(function () {
        contactSubmit.disabled = false;
        contactError.textContent = t.failed;
        contactError.hidden = false;
      });
  });

  /* ---------- call-back request ---------- */

  function showCallback() {
    callbackDone.textContent = "";
    callbackForm.hidden = false;
    callbackError.hidden = true;
    showView("callback", callbackPhone.control);
  }

  /* The same shape the server checks: an optional leading +, digits with spaces, dashes, dots
     or parentheses between them; the server has the last word. */
  function plausiblePhone(value) {
    var digits = value.replace(/[^0-9]/g, "").length;
    return /^\+?[0-9 ().-]+$/.test(value) && digits >= MIN_PHONE_DIGITS && digits <= MAX_PHONE_DIGITS;
  }

  callbackForm.addEventListener("submit", function (event) {
    event.preventDefault();
    callbackError.hidden = true;
    var phone = callbackPhone.control.value.trim();
    if (!phone) {
      showError(callbackPhone, t.required);
    } else {
      showError(callbackPhone, phone.length <= MAX_PHONE_CHARS && plausiblePhone(phone) ? "" : t.badPhone);
    }
    if (!focusFirstInvalid([callbackPhone])) {
      return;
    }
    callbackSubmit.disabled = true;
    postForm("v1/callback", { key: widgetKey, language: lang, phone: phone })
      .then(function (result) {
        callbackSubmit.disabled = false;
        if (result.ok) {
          callbackForm.hidden = true;
          callbackDone.textContent = t.callbackSent;
          callbackDone.focus();
          return;
        }
        if (result.json.field === "phone") {
          showError(callbackPhone, result.json.message || t.badPhone);
          callbackPhone.control.focus();
        } else {
          callbackError.textContent = result.json.message || t.failed;
          callbackError.hidden = false;
        }
      })
      .catch(function () {
        callbackSubmit.disabled = false;
        callbackError.textContent = t.failed;
        callbackError.hidden = false;
      });
  });

  /* ---------- mount ---------- */

  function mount() {
    document.head.appendChild(el("link", { rel: "stylesheet", href: new URL("widget.css", gateway).href }));
    document.body.appendChild(root);
    var saved = loadSession();
    if (saved && (saved.token || saved.start)) {
      /* A reload during a chat: resume it, replaying the whole transcript onto the empty log. */
      if (STRINGS[saved.lang]) {
        languageSelect.value = saved.lang;
        setLanguage(saved.lang);
      }
      session.token = saved.token || null;
      session.start = saved.start || null;
      session.unacked = saved.unacked || [];
      if (!session.token && session.start) {
        pendingLine(session.start);
      }
      session.unacked.forEach(pendingLine);
      status.textContent = t.connecting;
      showView("chat", null);
      connect();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mount);
  } else {
    mount();
  }
})();
