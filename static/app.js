// FocusFlow's only script of its own (htmx does the rest): copy buttons, and a sentence in the
// message area when an htmx request fails. Pages work without it.
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
})();
