// FocusFlow's service worker. It is here so that FocusFlow can be installed on a phone (and so
// receive shares from other apps: see the manifest's share_target); it caches nothing and
// leaves every request to the network, so pages are always current and Basic auth works as
// it does without it.
self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});
