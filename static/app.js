// FocusFlow's only script of its own (htmx does the rest): copy buttons, a sentence in the
// message area when an htmx request fails, and file uploads with their progress (a file picked
// in the add form or dropped anywhere on the page). Pages work without it.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function say(text) {
    var region = document.getElementById("flash");
    if (!region) return;
    var line = document.createElement("p");
    line.className = "flash flash-error";
    line.textContent = text;
    region.replaceChildren(line);
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on a LAN has no clipboard API: copy from a selected, off-screen textarea.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.className = "offscreen";
      area.setAttribute("readonly", "");
      document.body.appendChild(area);
      area.select();
      var copied = document.execCommand("copy");
      area.remove();
      if (copied) resolve(); else reject(new Error("copy refused"));
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    var label = button.querySelector("span");
    if (!source || !label) return;
    var before = label.dataset.label || label.textContent;
    label.dataset.label = before;
    copy(source.value).then(
      function () { label.textContent = "Copied"; },
      function () { label.textContent = "Copy failed"; }
    ).then(function () {
      setTimeout(function () { label.textContent = before; }, 2000);
    });
  });

  // Success messages fade after a while; any message goes when clicked.
  function dismiss(message) {
    message.classList.add("is-leaving");
    setTimeout(function () { message.remove(); }, 300);
  }
  function schedule(root) {
    root.querySelectorAll(".flash-success:not([data-timed])").forEach(function (message) {
      message.setAttribute("data-timed", "");
      setTimeout(function () { dismiss(message); }, 8000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { schedule(document); });
  document.addEventListener("htmx:afterSettle", function () { schedule(document); });
  document.addEventListener("htmx:oobAfterSwap", function () { schedule(document); });
  document.addEventListener("click", function (event) {
    var message = event.target.closest(".flash");
    if (message) dismiss(message);
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    if (status === 429) say("Too many requests for a moment; FocusFlow will catch up shortly.");
    else if (status === 403) say("This page has expired. Reload it and try again.");
    else say("That did not work (error " + status + "). Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    say("FocusFlow cannot be reached right now. The page catches up once it is back.");
  });

  // Installable on a phone, and a target for other apps' shares (see static/sw.js).
  if ("serviceWorker" in navigator && window.isSecureContext) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/static/sw.js", { scope: "/" }).catch(function () {
        // Without it FocusFlow works the same; it just cannot be installed.
      });
    });
  }

  // ------------------------------------------------------------------ transcript
  // A turn's time plays the recording from there; the turn being spoken is marked; the filter
  // hides the turns without its words.

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-seek]");
    var player = document.querySelector("audio.player");
    if (!link || !player) return;
    event.preventDefault();
    var seconds = Number(link.getAttribute("data-seek"));
    if (!isFinite(seconds)) return;
    player.currentTime = seconds;
    var playing = player.play();
    if (playing && playing.catch) playing.catch(function () { /* the person presses play */ });
  });

  // The turns' starts, read once per list of turns (a poll that changes the transcript
  // replaces the list, and with it this cache).
  var timed = { list: null, starts: [], turns: [] };
  function turnsOf(list) {
    if (timed.list !== list) {
      var turns = Array.prototype.slice.call(list.querySelectorAll(".turn[data-start]"));
      timed = {
        list: list,
        turns: turns,
        starts: turns.map(function (turn) { return Number(turn.getAttribute("data-start")); })
      };
    }
    return timed;
  }
  var playingTurn = null;
  // Media events do not bubble: caught on the way down.
  document.addEventListener("timeupdate", function (event) {
    if (!event.target.matches || !event.target.matches("audio.player")) return;
    var list = document.querySelector(".turns");
    if (!list) return;
    var found = turnsOf(list);
    var now = event.target.currentTime;
    // The last turn that started by now (starts are in order): a binary search.
    var low = 0, high = found.starts.length - 1, at = -1;
    while (low <= high) {
      var middle = (low + high) >> 1;
      if (found.starts[middle] <= now) { at = middle; low = middle + 1; } else { high = middle - 1; }
    }
    var turn = at >= 0 ? found.turns[at] : null;
    if (turn === playingTurn) return;
    if (playingTurn) { playingTurn.classList.remove("is-playing"); playingTurn.removeAttribute("aria-current"); }
    if (turn) { turn.classList.add("is-playing"); turn.setAttribute("aria-current", "true"); }
    playingTurn = turn;
  }, true);

  var filterTimer = null;
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.classList || !input.classList.contains("transcript-filter")) return;
    clearTimeout(filterTimer);
    filterTimer = setTimeout(function () { filterTurns(input); }, 150);
  });
  function filterTurns(input) {
    var list = document.getElementById(input.getAttribute("data-turns"));
    if (!list) return;
    var words = input.value.trim().toLowerCase();
    var turns = list.children;
    // Each turn's words, lower-cased once per list.
    if (!list.turnTexts) {
      list.turnTexts = Array.prototype.map.call(turns, function (turn) {
        return turn.textContent.toLowerCase();
      });
    }
    var shown = 0;
    for (var index = 0; index < turns.length; index += 1) {
      var match = !words || list.turnTexts[index].indexOf(words) !== -1;
      turns[index].hidden = !match;
      if (match) shown += 1;
    }
    var count = document.getElementById(input.getAttribute("aria-describedby"));
    if (count) count.textContent = words ? shown + " of " + turns.length + " turns" : "";
  }

  // ------------------------------------------------------------------ local time
  // The server writes times in DISPLAY_TIMEZONE, with the zone named. Here they are shown in
  // the browser's own zone instead, and forms say which zone a typed date is read in.
  // A formatter costs a few milliseconds to make (more on a slow phone): they are made once,
  // and only when the browser's zone is not the one the server wrote the page in.
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (error) { zone = ""; }
  // The zone the server wrote the page's times in (DISPLAY_TIMEZONE).
  var written = document.querySelector("[data-zone]");
  var serverZone = written ? written.getAttribute("data-zone") : "";
  var dayFormat = null;
  var inputFormat = null;
  function formats() {
    if (dayFormat) return;
    dayFormat = new Intl.DateTimeFormat("en-US", {
      weekday: "short", day: "numeric", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
      timeZoneName: "short"
    });
    inputFormat = new Intl.DateTimeFormat("en-US", {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23"
    });
  }

  function parts(format, date) {
    var found = {};
    format.formatToParts(date).forEach(function (part) { found[part.type] = part.value; });
    return found;
  }

  // `Thu 25 Sep 2025, 22:05 CEST`, as the server writes it; `22:05:39` for a log line.
  function localText(date, kind) {
    var day = parts(dayFormat, date);
    if (kind === "time") return day.hour + ":" + day.minute + ":" + day.second;
    return day.weekday + " " + day.day + " " + day.month + " " + day.year + ", " +
      day.hour + ":" + day.minute + " " + (day.timeZoneName || zone);
  }

  // `2025-09-25T22:05`, as a datetime-local field wants it.
  function localInput(date) {
    var day = parts(inputFormat, date);
    return day.year + "-" + day.month + "-" + day.day + "T" + day.hour + ":" + day.minute;
  }

  function localize(root) {
    if (!zone) return;
    // The page is in this zone already: only the forms need to say so.
    var inZone = zone === serverZone;
    if (!inZone) formats();
    if (!inZone) root.querySelectorAll("time[data-local]").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      time.textContent = localText(date, time.getAttribute("data-local"));
      time.title = zone;
    });
    root.querySelectorAll("input.browser-zone").forEach(function (input) {
      // A form still in the server's zone: its date field is shown in this one.
      var field = input.form && input.form.querySelector("input[data-iso]");
      if (field && input.value !== zone) {
        formats();
        var date = new Date(field.getAttribute("data-iso"));
        if (!isNaN(date.getTime())) field.value = localInput(date);
      }
      input.value = zone;
    });
    root.querySelectorAll(".zone-name").forEach(function (name) { name.textContent = zone; });
  }
  document.addEventListener("DOMContentLoaded", function () { localize(document); });
  // (The whole page: a swapped element may be detached by now. A page has a few hundred
  // times at most.)
  document.addEventListener("htmx:afterSettle", function () { localize(document); });
  document.addEventListener("htmx:oobAfterSwap", function () { localize(document); });

  // ------------------------------------------------------------------ uploads
  // htmx sends links and pasted text; a file goes through our own XMLHttpRequest, whose upload
  // events give real progress. The server answers as it does to htmx (the add form again, the
  // list and the message out of band), and htmx swaps that answer in.

  var TRANSCRIPT = /\.(txt|vtt|srt)$/i;
  var MEDIA = /\.(mp3|m4a|wav|ogg|oga|opus|flac|aac|webm|weba|mp4|m4v|mov|mkv|mpga|mpeg|wma|amr|3gp)$/i;
  var upload = null; // the request in flight

  // The add form. A phone shows no list (and so no form) beside a job, but a file dropped
  // there is still sent through it, and the new meeting opened when it is added.
  function form() {
    return document.getElementById("add-job");
  }

  function onScreen(add) {
    return add.offsetParent !== null;
  }

  // Sizes as the server writes them (human_bytes): 1024 to a KB, one decimal.
  function size(bytes) {
    var units = ["B", "KB", "MB", "GB", "TB"];
    var value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit === 0 ? String(bytes) : value.toFixed(1)) + " " + units[unit];
  }

  // A problem with the file, said under the file field (and announced).
  function fileError(text) {
    var add = form();
    if (!add) return;
    // Where the form is not shown, the message area says it.
    if (text && !onScreen(add)) say(text);
    var old = add.querySelector("#job-file-error");
    if (old) old.remove();
    var field = add.querySelector(".field-file");
    var input = add.querySelector("#job-file");
    if (!text) {
      field.classList.remove("field-invalid");
      input.removeAttribute("aria-invalid");
      return;
    }
    var line = document.createElement("p");
    line.id = "job-file-error";
    line.className = "field-error";
    line.setAttribute("role", "alert");
    var words = document.createElement("span");
    words.textContent = text;
    line.appendChild(words);
    add.querySelector("#job-file-status").after(line);
    field.classList.add("field-invalid");
    input.setAttribute("aria-invalid", "true");
  }

  // What is wrong with a file before it is sent, or null.
  function check(file, add) {
    var max = Number(add.getAttribute("data-max-bytes")) || 0;
    var type = file.type || "";
    var known = TRANSCRIPT.test(file.name) || MEDIA.test(file.name) ||
      type.indexOf("audio/") === 0 || type.indexOf("video/") === 0;
    if (!known) {
      return "“" + file.name + "” is not a recording or a transcript. Choose audio or video " +
        "(mp3, m4a, wav, mp4…) or a .txt, .vtt or .srt file.";
    }
    if (file.size === 0) return "“" + file.name + "” is empty.";
    if (max && file.size > max && !TRANSCRIPT.test(file.name)) {
      return "“" + file.name + "” is " + size(file.size) + "; the largest upload is " +
        add.getAttribute("data-max-size") + ".";
    }
    return null;
  }

  function showChosen(add) {
    var input = add.querySelector("#job-file");
    var status = add.querySelector("#job-file-status");
    var file = input.files && input.files[0];
    if (!file) {
      status.hidden = true;
      status.textContent = "";
      fileError(null);
      return null;
    }
    status.hidden = false;
    status.textContent = file.name + " · " + size(file.size);
    var problem = check(file, add);
    fileError(problem);
    return problem;
  }

  function setBusy(add, busy) {
    add.classList.toggle("is-uploading", busy);
    add.querySelector("#upload-progress").hidden = !busy;
    add.querySelectorAll("button[type=submit], #job-file, #job-url, #job-transcript")
      .forEach(function (element) { element.disabled = busy; });
  }

  function progress(add, loaded, total, name) {
    var bar = add.querySelector("#upload-bar");
    var label = add.querySelector("#upload-label");
    if (total > 0) {
      var percent = Math.min(100, Math.floor(loaded * 100 / total));
      // Screen readers hear the quarters, not every event.
      var announce = add.querySelector("#upload-announce");
      var quarter = Math.floor(percent / 25) * 25;
      if (announce && announce.dataset.quarter !== String(quarter)) {
        announce.dataset.quarter = String(quarter);
        announce.textContent = "Upload " + quarter + " % done";
      }
      bar.value = percent;
      label.textContent = loaded >= total
        ? "Uploaded " + name + ", " + size(total) + ". Checking it…"
        : "Uploading " + name + ": " + size(loaded) + " of " + size(total) + " (" + percent + " %)";
    } else {
      bar.removeAttribute("value");
      label.textContent = "Uploading " + name + "…";
    }
  }

  function send(add) {
    var input = add.querySelector("#job-file");
    var file = input.files && input.files[0];
    if (!file || upload) return;
    var problem = showChosen(add);
    if (problem) { input.focus(); return; }
    if (pastedText(add)) return;
    var data = new FormData(add);
    var request = new XMLHttpRequest();
    upload = request;
    request.open("POST", add.getAttribute("action"));
    request.setRequestHeader("HX-Request", "true");
    request.setRequestHeader("HX-Current-URL", window.location.href);
    request.upload.addEventListener("progress", function (event) {
      progress(add, event.loaded, event.lengthComputable ? event.total : 0, file.name);
    });
    function done() {
      upload = null;
      if (document.body.contains(add)) setBusy(add, false);
    }
    request.addEventListener("load", function () {
      var status = request.status;
      done();
      var created = request.getResponseHeader("X-FocusFlow-Job");
      if (created && status >= 200 && status < 300 && !onScreen(add)) {
        window.location.assign("/jobs/" + encodeURIComponent(created));
        return;
      }
      if ((status >= 200 && status < 300) || status === 422) {
        // The add form again (empty, or with the reason beside the file), and out of band
        // the list with the new job and the message.
        window.htmx.swap(add, request.responseText, { swapStyle: "outerHTML" });
        var again = form();
        if (status === 422 && again) {
          var field = again.querySelector("[aria-invalid=true]");
          if (field) field.focus();
        }
        return;
      }
      if (status === 413) fileError("“" + file.name + "” is larger than the server accepts.");
      else if (status === 403) fileError("This page has expired. Reload it and upload again.");
      else if (status === 429) fileError("Too many requests for a moment. Wait a little and upload again.");
      else fileError("The upload failed (error " + status + "). Try again.");
    });
    request.addEventListener("error", function () {
      done();
      fileError("The upload was interrupted: FocusFlow could not be reached. Check the connection and try again.");
    });
    request.addEventListener("abort", function () {
      done();
      fileError("Upload cancelled. Nothing was added.");
    });
    setBusy(add, true);
    progress(add, 0, file.size, file.name);
    request.send(data);
  }

  document.addEventListener("change", function (event) {
    if (event.target.id !== "job-file") return;
    var add = form();
    if (add) showChosen(add);
  });

  // Capture phase: before htmx sees the submit, a form with a file is ours.
  document.addEventListener("submit", function (event) {
    var add = event.target;
    if (!add || add.id !== "add-job") return;
    var input = add.querySelector("#job-file");
    if (!input || !input.files || input.files.length === 0) return;
    event.preventDefault();
    event.stopPropagation();
    send(add);
  }, true);

  // A meeting comes from a file or from pasted text: say so before a file is sent for nothing.
  function pastedText(add) {
    var pasted = add.querySelector("#job-transcript");
    if (!pasted || !pasted.value.trim()) return false;
    fileError("Remove the pasted transcript first, or the file: a meeting comes from one of them.");
    return true;
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("#upload-cancel") && upload) upload.abort();
  });

  window.addEventListener("beforeunload", function (event) {
    if (!upload) return;
    event.preventDefault();
    event.returnValue = "";
  });

  // Drop a file anywhere on the page: it goes into the add form and is sent at once.
  var depth = 0;
  function carriesFiles(event) {
    var types = event.dataTransfer && event.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
  }
  function overlay(show) {
    document.documentElement.classList.toggle("is-dragging", show);
  }
  document.addEventListener("dragenter", function (event) {
    if (!carriesFiles(event) || !form()) return;
    depth += 1;
    overlay(true);
  });
  document.addEventListener("dragover", function (event) {
    if (!carriesFiles(event)) return;
    // Always taken, so a file dropped where nothing takes it is not opened by the browser
    // (which would leave the page).
    event.preventDefault();
    event.dataTransfer.dropEffect = upload || !form() ? "none" : "copy";
  });
  document.addEventListener("dragleave", function (event) {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) overlay(false);
  });
  document.addEventListener("drop", function (event) {
    depth = 0;
    overlay(false);
    if (!carriesFiles(event)) return;
    event.preventDefault();
    var add = form();
    if (!add) {
      say("Open the list of meetings to add one: the add form is there.");
      return;
    }
    var files = event.dataTransfer.files;
    if (!files || files.length === 0 || upload) return;
    if (files.length > 1) {
      fileError("Drop one file at a time: each file becomes one meeting.");
      return;
    }
    var input = add.querySelector("#job-file");
    input.files = files;
    var url = add.querySelector("#job-url");
    if (url) url.value = "";
    if (onScreen(add)) add.scrollIntoView({ block: "nearest" });
    send(add);
  });

  // After a swap that search or the inline edit asked for. (A swapped-out element is detached
  // by now, but still knows where it sat.)
  document.addEventListener("htmx:afterSwap", function (event) {
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!source || !source.closest) return;
    if (source.closest("#search-form")) {
      // The new list's size is announced (polls that refresh the list are not).
      var region = document.getElementById("search-announce");
      var list = document.getElementById("job-list");
      if (!region || !list) return;
      var cards = list.querySelectorAll(".job-card").length;
      var more = list.querySelector(".pager-older") ? " or more" : "";
      region.textContent = cards === 0 ? "No meetings match." :
        cards + more + (cards === 1 && !more ? " meeting" : " meetings") + " found.";
    } else if (source.closest(".heading-form")) {
      // Saved or cancelled: the focus goes back where it was, on Edit. A refused edit comes
      // back as the form, which focuses its title itself.
      var heading = document.getElementById("job-heading");
      if (!heading || heading.querySelector("form")) return;
      var edit = heading.querySelector(".edit-heading");
      if (edit) edit.focus();
    }
  });

  // ------------------------------------------------------------------ ask
  // A link to a moment (`/jobs/<id>#t=<seconds>`, a citation of an answer) plays the
  // recording from there once the page has it.
  function seekToHash() {
    var found = /^#t=(\d+(?:\.\d+)?)$/.exec(window.location.hash);
    var player = document.querySelector("audio.player");
    if (!found || !player) return;
    var seconds = Number(found[1]);
    function seek() {
      player.currentTime = seconds;
      var playing = player.play();
      if (playing && playing.catch) playing.catch(function () { /* the person presses play */ });
    }
    if (player.readyState >= 1) seek();
    else player.addEventListener("loadedmetadata", seek, { once: true });
  }
  window.addEventListener("hashchange", seekToHash);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", seekToHash);
  else seekToHash();

  // The answer streams in: the form's question goes to POST /api/ask as server-sent events
  // (taken before htmx sees the submit); without fetch streams, htmx posts the form and shows
  // the finished answer, and without JavaScript the page does.
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function clock(seconds) {
    var s = Math.floor(Math.max(0, seconds)), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    s = s % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return h > 0 ? h + ":" + two(m) + ":" + two(s) : m + ":" + two(s);
  }
  function answerNode(answer, token) {
    var article = el("article", "ask-answer");
    article.id = "ask-" + answer.id;
    article.appendChild(el("h3", "ask-question", answer.question));
    article.appendChild(el("p", "ask-text", answer.answer));
    if (answer.citations.length) {
      var list = el("ol", "ask-citations");
      answer.citations.forEach(function (citation) {
        var item = el("li", "ask-citation");
        item.value = citation.n;
        var label = "[" + citation.n + "] " + (citation.title || "Untitled meeting");
        if (citation.meeting_date) label += " · " + citation.meeting_date.slice(0, 10);
        if (citation.speaker) label += " · " + citation.speaker;
        var link = el("a", "ask-cite");
        link.href = "/jobs/" + encodeURIComponent(citation.job) +
          (citation.start === null || citation.start === undefined ? "" : "#t=" + citation.start.toFixed(3));
        if (citation.start !== null && citation.start !== undefined) label += " at " + clock(citation.start);
        link.textContent = label;
        item.appendChild(link);
        item.appendChild(el("blockquote", "ask-quote", citation.text));
        list.appendChild(item);
      });
      article.appendChild(list);
    }
    var forget = el("form", "ask-forget");
    forget.method = "post";
    forget.action = "/ask/" + encodeURIComponent(answer.id) + "/delete";
    var hidden = el("input");
    hidden.type = "hidden"; hidden.name = "csrf_token"; hidden.value = token;
    forget.appendChild(hidden);
    var button = el("button", "button button-quiet", "Forget this question");
    button.type = "submit";
    forget.appendChild(button);
    article.appendChild(forget);
    return article;
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("ask-form")) return;
    if (!window.fetch || !window.ReadableStream || !window.TextDecoder) return;
    var target = document.querySelector(form.getAttribute("hx-target") || "#ask-result");
    var question = form.querySelector("[name=question]");
    if (!target || !question || !question.value.trim()) return;
    event.preventDefault();
    event.stopPropagation();
    var job = form.querySelector("[name=job]");
    var token = form.querySelector("[name=csrf_token]");
    var body = { question: question.value };
    if (job && job.value) body.jobs = [job.value];
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    var text = el("p", "ask-text ask-streaming");
    target.replaceChildren(text);
    function fail(message) {
      target.replaceChildren(el("p", "ask-error", message));
    }
    fetch("/api/ask", {
      method: "POST",
      headers: { "content-type": "application/json", "accept": "text/event-stream" },
      body: JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok || !response.body) {
        return response.json().then(function (error) { fail(error.error || "The question could not be answered."); },
          function () { fail("The question could not be answered (" + response.status + ")."); });
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function handle(block) {
        var kind = "message", data = "";
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) kind = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data += line.slice(5).replace(/^ /, "");
        });
        if (!data) return;
        var value;
        try { value = JSON.parse(data); } catch (e) { return; }
        if (kind === "delta") text.textContent += value.text;
        else if (kind === "answer") target.replaceChildren(answerNode(value, token ? token.value : ""));
        else if (kind === "error") fail(value.error);
      }
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
          var end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            handle(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      fail("The connection broke off before the answer came.");
    }).then(function () {
      if (button) button.disabled = false;
    });
  }, true);
})();
