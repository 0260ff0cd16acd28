// A light touch of JavaScript (htmx cannot be vendored here): confirm buttons, and forms
// marked data-fragment="#target" submit in the background and replace the target.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var selector = form.getAttribute("data-fragment");
    if (!selector) return;
    event.preventDefault();
    var target = document.querySelector(selector);
    var method = (form.getAttribute("method") || "get").toUpperCase();
    var url = form.getAttribute("action") || window.location.pathname;
    var body = new FormData(form);
    var init = { method: method, headers: { "X-CSRF-Token": csrf, "HX-Request": "true" } };
    if (method === "GET") {
      url += "?" + new URLSearchParams(body).toString();
    } else {
      init.body = body;
    }
    fetch(url, init).then(function (response) {
      var redirect = response.headers.get("HX-Redirect");
      if (redirect) { window.location = redirect; return null; }
      return response.text();
    }).then(function (html) {
      if (html !== null && target) target.innerHTML = html;
    });
  });

  // Elements with data-local-time="ISO" show the viewer's local time as a tooltip.
  document.querySelectorAll("[data-local-time]").forEach(function (el) {
    var d = new Date(el.getAttribute("data-local-time"));
    if (!isNaN(d)) el.title = d.toLocaleString();
  });
})();

// A print button on the printable export pages (no inline script).
document.addEventListener("click", function (event) {
  if (event.target && event.target.hasAttribute && event.target.hasAttribute("data-print")) {
    window.print();
  }
});
