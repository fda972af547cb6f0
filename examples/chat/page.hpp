// chat's page: the HTML and JavaScript GET / serves — a log of messages, a line to type in,
// and a WebSocket to /ws that reconnects when the server restarts or goes away.
#pragma once

#include <string_view>

namespace chat {

inline constexpr std::string_view page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chat</title>
<style>
body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em; }
#log { list-style: none; padding: 0; height: 60vh; overflow-y: auto; border: 1px solid #ccc; }
#log li { padding: .2em .5em; border-bottom: 1px solid #eee; overflow-wrap: anywhere; }
#say { display: flex; gap: .5em; margin-top: .5em; }
#text { flex: 1; }
</style>
</head>
<body>
<h1>chat</h1>
<p id="status">connecting</p>
<ul id="log"></ul>
<form id="say"><input id="text" autocomplete="off" maxlength="4000" autofocus><button>Send</button></form>
<script>
"use strict";
const log = document.getElementById("log");
const status = document.getElementById("status");
const text = document.getElementById("text");
let ws = null;
let delay = 250;
function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => { status.textContent = "connected"; delay = 250; };
  ws.onmessage = (e) => {
    const li = document.createElement("li");
    li.textContent = e.data;
    log.appendChild(li);
    li.scrollIntoView();
  };
  ws.onclose = (e) => {
    // 1012: this worker is being replaced; 1001: it went away. Either way, another serves.
    status.textContent = "disconnected (" + e.code + "), reconnecting";
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 5000);
  };
}
document.getElementById("say").addEventListener("submit", (e) => {
  e.preventDefault();
  if (text.value && ws && ws.readyState === WebSocket.OPEN) {
    ws.send(text.value);
    text.value = "";
  }
});
connect();
</script>
</body>
</html>
)html";

}  // namespace chat
