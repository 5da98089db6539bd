// surveyhooks console: the little the pages need beyond htmx. Loaded as a file (the CSP
// allows no inline script); everything works without it but local times and copying.
(function () {
  "use strict";

  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });

  // Times arrive in UTC (<time datetime="...">); show them in the viewer's zone, keeping
  // UTC in the tooltip.
  function localise(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local) { return; }
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) { return; }
      el.title = el.textContent;
      el.textContent = format.format(d);
      el.dataset.local = "1";
    });
    // datetime-local inputs are read in the viewer's zone: send its offset with them.
    root.querySelectorAll("input[data-tz-offset]").forEach(function (el) {
      el.value = String(new Date().getTimezoneOffset());
    });
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest("button[data-copy]");
    if (!button) { return; }
    var field = document.getElementById(button.dataset.copy);
    if (!field) { return; }
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done);
    } else {
      field.select();
      document.execCommand("copy");
      done();
    }
  });

  // A form sent back with the API's errors puts the keyboard on the first field to fix.
  function focusFirstError() {
    var bad = document.querySelector('[aria-invalid="true"]');
    if (!bad) { return; }
    if (bad.tagName === "FIELDSET") { bad = bad.querySelector("input"); }
    if (bad) { bad.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () { localise(document); focusFirstError(); });
  document.addEventListener("htmx:afterSettle", function (ev) { localise(ev.target); });
})();
