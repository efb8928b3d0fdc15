// gem-rag demo page: asks /v1/rag/answer with stream=true and renders the server-sent events.
"use strict";

const $ = (id) => document.getElementById(id);
const CONSISTENCY_TEXT = {
  consistent: "Consistent with the sources",
  partly: "Partly supported by the sources",
  unsupported: "Not supported by the sources",
  abstained: "The sources do not answer this",
};
let busy = false;
let indexing = false;
let canAnswer = false;

// API key (servers started with --api-key): from ?key=... (then dropped from the address bar), else asked once.
const KEY_STORE = "gem-rag-api-key";
let apiKey = new URLSearchParams(location.search).get("key") || sessionStorage.getItem(KEY_STORE) || "";
let keyDeclined = false;
if (new URLSearchParams(location.search).has("key")) {
  sessionStorage.setItem(KEY_STORE, apiKey);
  history.replaceState(null, "", location.pathname);
}

async function api(url, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const response = await fetch(url, { ...options, headers });
  if (response.status !== 401 || keyDeclined) return response;
  const typed = window.prompt("This server needs its API key (the one given to --api-key):");
  if (!typed) { keyDeclined = true; return response; }
  apiKey = typed.trim();
  sessionStorage.setItem(KEY_STORE, apiKey);
  return api(url, options);
}

function setStatus(status) {
  indexing = status.state === "indexing";
  canAnswer = status.can_answer !== undefined ? status.can_answer : !indexing;
  const box = $("status");
  box.dataset.state = status.state;
  const chunks = status.chunks ? `${status.chunks.toLocaleString()} passages` : "no passages";
  $("status-text").textContent = status.state === "indexing" ? (canAnswer ? `indexing… · answering from ${chunks}` : "indexing…") :
    status.state === "ready" ? `ready · ${chunks}` : status.state === "empty" ? "no documents" : status.state;
  box.title = status.corpus ? `indexed: ${status.corpus}` : "";
  $("model-name").textContent = status.model ? `Model: ${status.model}` : "";
  $("index-message").textContent = status.message === "ready" ? "" : status.message;
  $("folder-form").hidden = !status.folder_indexing;
  $("ask-button").disabled = busy || !canAnswer;
}

async function refreshStatus() {
  try {
    const response = await api("/api/status");
    const body = await response.json();
    setStatus(response.ok ? body : { state: "error", message: errorText(body, `status ${response.status}`), chunks: 0 });
  } catch (err) {
    setStatus({ state: "error", message: "the server does not answer", chunks: 0 });
  }
  setTimeout(refreshStatus, indexing ? 1000 : 5000);
}

function errorText(body, fallback) {
  return (body && body.error && body.error.message) || fallback;
}

function showConsistency(consistency) {
  const badge = $("consistency");
  if (!consistency) { badge.hidden = true; return; }
  const label = consistency.label || "unknown";
  badge.className = `badge ${label}`;
  const grounding = typeof consistency.grounding === "number" ? ` · ${Math.round(consistency.grounding * 100)}%` : "";
  badge.textContent = (CONSISTENCY_TEXT[label] || label) + grounding;
  badge.title = "How well the answer is supported by the cited passages";
  badge.hidden = false;
}

function showTimings(timings, usage) {
  const parts = [];
  const names = { retrieval_s: "retrieval", ttft_s: "first token", generation_s: "generation", total_s: "total" };
  for (const [key, name] of Object.entries(names)) {
    if (typeof timings[key] === "number") parts.push(`${name} ${timings[key].toFixed(2)} s`);
  }
  if (usage && usage.completion_tokens) parts.push(`${usage.completion_tokens} tokens`);
  $("timings").textContent = parts.join(" · ");
}

// The supporting sentences: quoted under the answer, highlighted in their passage.
let support = [];

function showSupport(sentences, sources) {
  support = sentences || [];
  const box = $("support");
  box.replaceChildren();
  const titles = Object.fromEntries((sources || []).map((s) => [s.id, s.title]));
  for (const sentence of support) {
    const quote = document.createElement(sentence.kind === "code" ? "pre" : "blockquote");
    quote.className = `support-${sentence.kind}`;
    quote.textContent = sentence.kind === "code" ? sentence.text : sentence.text.replace(/\s+/g, " ");
    if (titles[sentence.chunk_id] && sentence.kind !== "code") {
      const cite = document.createElement("cite");
      cite.textContent = ` — ${titles[sentence.chunk_id]}`;
      quote.append(cite);
    }
    box.append(quote);
  }
  box.hidden = support.length === 0;
}

// `text` with the supporting sentences of chunk `id` wrapped in <mark> (as DOM nodes, never as HTML).
function highlighted(text, id) {
  const spans = support.filter((s) => s.chunk_id === id).sort((a, b) => a.start - b.start);
  const out = document.createDocumentFragment();
  let at = 0;
  for (const span of spans) {
    if (span.start < at) continue;
    out.append(text.slice(at, span.start));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(span.start, span.end);
    out.append(mark);
    at = span.end;
  }
  out.append(text.slice(at));
  return out;
}

function showSources(sources, answeredFrom = []) {
  const list = $("sources");
  list.replaceChildren();
  const top = Math.max(...sources.map((s) => s.score), 1e-9);
  for (const source of sources) {
    const item = document.createElement("li");
    item.className = "source";
    const head = document.createElement("div");
    head.className = "source-head";
    const title = document.createElement("div");
    title.innerHTML = `<span class="source-rank">${source.rank}.</span>`;
    const name = document.createElement("span");
    name.className = "source-title";
    name.textContent = source.title;
    title.append(name);
    if (answeredFrom.includes(source.id)) {
      item.classList.add("answered");
      const tag = document.createElement("span");
      tag.className = "answer-tag";
      tag.textContent = "answer found here";
      title.append(tag);
    }
    const path = document.createElement("div");
    path.className = "source-path";
    path.textContent = source.source;
    title.append(path);
    const score = document.createElement("div");
    score.className = "score";
    score.title = "retrieval score (higher is better)";
    const width = Math.max(4, Math.round((100 * source.score) / top));
    score.innerHTML = `<span class="score-bar"><span style="width:${width}%"></span></span>`;
    score.append(`score ${source.score.toFixed(3)}`);
    head.append(title, score);
    const holds = support.some((s) => s.chunk_id === source.id);
    const snippet = document.createElement("p");
    snippet.className = "snippet";
    snippet.textContent = source.snippet;
    const details = document.createElement("details");
    details.innerHTML = "<summary>full passage</summary>";
    const pre = document.createElement("pre");
    pre.append(highlighted(source.text, source.id));
    details.append(pre);
    if (holds) {  // the passage the answer rests on: open, its sentence highlighted
      item.classList.add("answered");
      details.open = true;
      snippet.hidden = true;
    }
    item.append(head, snippet, details);
    list.append(item);
  }
  $("sources-card").hidden = sources.length === 0;
}

async function ask(question) {
  busy = true;
  $("ask-button").disabled = true;
  $("answer-card").hidden = false;
  $("sources-card").hidden = true;
  $("error").hidden = true;
  $("consistency").hidden = true;
  $("timings").textContent = "";
  const answer = $("answer");
  answer.textContent = "";
  answer.classList.remove("code");
  delete answer.dataset.done;
  showSupport([], []);
  answer.classList.add("streaming");
  try {
    const response = await api("/v1/rag/answer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question, stream: true }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(errorText(body, `the server answered ${response.status}`));
    }
    let sources = [];
    await readEvents(response, (event) => {
      if (event.type === "sources") { sources = event.sources; showSources(sources); }
      else if (event.type === "support") {
        showSupport(event.supporting_sentences, sources);
        showSources(sources, [...new Set(event.supporting_sentences.map((s) => s.chunk_id))]);
      } else if (event.type === "token") answer.textContent += event.text;
      else if (event.type === "done") {
        answer.textContent = event.answer;
        answer.classList.toggle("code", event.how === "code");
        answer.dataset.done = "true";
        answer.dataset.how = event.how || "";
        showSupport(event.supporting_sentences, event.sources);
        showSources(event.sources, event.answer_source_ids || []);
        showConsistency(event.consistency);
        showTimings(event.timings || {}, event.usage);
      } else if (event.type === "error") throw new Error(event.message);
    });
  } catch (err) {
    $("error").textContent = `Could not answer: ${err.message}`;
    $("error").hidden = false;
  } finally {
    answer.classList.remove("streaming");
    busy = false;
    $("ask-button").disabled = !canAnswer;
  }
}

async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of frame.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function postJSON(url, body) {
  const response = await api(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error(errorText(data, `the server answered ${response.status}`));
  return data;
}

async function upload(event) {
  event.preventDefault();
  const files = Array.from($("upload-files").files);
  if (files.length === 0) { $("index-message").textContent = "Choose one or more files first."; return; }
  try {
    const texts = await Promise.all(files.map(async (file) => ({ name: file.name, text: await file.text() })));
    setStatus({ ...(await postJSON("/api/upload", { files: texts })), folder_indexing: !$("folder-form").hidden });
    $("upload-files").value = "";
  } catch (err) {
    $("index-message").textContent = `Upload failed: ${err.message}`;
  }
}

async function indexFolder(event) {
  event.preventDefault();
  const path = $("folder-path").value.trim();
  if (!path) { $("index-message").textContent = "Type the path of a folder first."; return; }
  try {
    setStatus({ ...(await postJSON("/api/index-folder", { path })), folder_indexing: true });
  } catch (err) {
    $("index-message").textContent = `Indexing failed: ${err.message}`;
  }
}

$("ask-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (question && !busy) ask(question);
});
for (const chip of document.querySelectorAll(".chip")) {
  chip.addEventListener("click", () => { $("question").value = chip.textContent; $("ask-form").requestSubmit(); });
}
$("upload-form").addEventListener("submit", upload);
$("folder-form").addEventListener("submit", indexFolder);
refreshStatus();
