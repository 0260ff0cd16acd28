// The handoff queue refreshes its table in place every data-refresh-seconds (SLA timers,
// new handoffs) with a small fetch of the rows fragment. Without JavaScript the page works
// as before (reload it). A refresh is skipped while the tab is hidden or someone is using
// a control inside the table (an assign menu), so it never takes a choice away.
(function () {
  "use strict";
  var box = document.getElementById("queue-table");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-refresh");
  var seconds = parseInt(box.getAttribute("data-refresh-seconds") || "30", 10);
  if (!url || !(seconds > 0)) return;
  var busy = false;

  function inUse() {
    var active = document.activeElement;
    return active && active !== document.body && box.contains(active);
  }

  function refresh() {
    if (busy || document.visibilityState === "hidden" || inUse()) return;
    busy = true;
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        var redirect = response.headers.get("HX-Redirect");
        if (redirect) { window.location = redirect; return null; }  // logged out
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && !inUse()) {
          box.innerHTML = html;
          box.setAttribute("data-refreshed", new Date().toISOString());
        }
      })
      .catch(function () { /* offline: try again next time */ })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") refresh();
  });
})();
