// editgate console: reloads the page every `data-refresh` seconds (an attribute of <body>),
// except while the reader is using a form on it or the tab is hidden. Every page works
// without it; `?refresh=0` turns it off.
"use strict";
(function () {
  var secs = Number(document.body.dataset.refresh);
  if (!(secs > 0)) {
    return;
  }
  var edited = false;
  document.addEventListener("input", function () {
    edited = true;
  });
  function tick() {
    var el = document.activeElement;
    var typing = el && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(el.tagName);
    if (!edited && !typing && !document.hidden) {
      window.location.reload();
      return;
    }
    window.setTimeout(tick, secs * 1000);
  }
  window.setTimeout(tick, secs * 1000);
})();
