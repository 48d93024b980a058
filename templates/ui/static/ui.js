// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  function span(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
        m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) return h ? d + " d " + h + " h" : d + " d";
    if (h) return m ? h + " h " + m + " min" : h + " h";
    if (m) return m + " min";
    return s + " s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-countdown")) - now) / 1000;
      el.textContent = left > 0 ? span(left) + " left" : "ended";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll("form[data-confirm], form[data-confirm-reject]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        var button = event.submitter;
        var message = form.getAttribute("data-confirm");
        if (!message && button && button.value === "reject") {
          message = form.getAttribute("data-confirm-reject");
        }
        if (message && !window.confirm(message)) event.preventDefault();
      });
    });
    // The new token's Copy button (hidden without this file: the field is selectable).
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var field = document.getElementById(button.getAttribute("data-copy"));
      if (!field || !navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(field.value).then(function () {
          button.textContent = "Copied";
        }, function () {
          field.select();
        });
      });
    });
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { if (select.value) select.form.submit(); });
    });
  });
})();
