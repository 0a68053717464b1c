// Live regions: an element with data-live="URL" is refreshed from URL (the same page, rendered as a
// fragment) every couple of seconds while the tab is visible, until the fragment says it is final.
(function () {
  "use strict";

  function follow(region) {
    var url = region.getAttribute("data-live");
    var every = parseInt(region.getAttribute("data-every") || "2000", 10);
    var last = null;
    var busy = false;
    var timer = null;

    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.redirected) { window.location.reload(); return null; }  // signed out meanwhile
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null) { return; }
          if (html !== last) {
            last = html;
            region.innerHTML = html;
          }
          if (html.indexOf('data-final="true"') !== -1) { window.clearInterval(timer); }
        })
        .catch(function () { /* the server is restarting: try again at the next tick */ })
        .then(function () { busy = false; });
    }

    timer = window.setInterval(tick, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), follow);
  });
})();
