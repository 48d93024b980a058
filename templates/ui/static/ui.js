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
  // The API's times carry microseconds; Date.parse is only required to read milliseconds.
  function parse(text) {
    return Date.parse(String(text).replace(/(\.\d{3})\d+/, "$1"));
  }
  // Times come in UTC (what people without JavaScript read); show them in this browser's
  // time zone, the UTC text kept as the element's title.
  function localTimes() {
    var format, zone;
    try {
      format = new Intl.DateTimeFormat(undefined, {
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        timeZoneName: "short"});
      zone = format.resolvedOptions().timeZone;
    } catch (e) {
      return;  // no Intl: the UTC text stays
    }
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var at = parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      if (!el.title) el.title = el.textContent;
      el.textContent = format.format(new Date(at));
    });
    var note = document.querySelector("[data-time-zone]");
    if (note && zone) note.textContent = "times in your time zone (" + zone + ")";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = (parse(el.getAttribute("data-countdown")) - now) / 1000;
      el.textContent = left > 0 ? span(left) + " left" : "ended";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes();
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
    // Typing a custom duration means choosing Custom.
    document.querySelectorAll("input[data-custom-duration]").forEach(function (input) {
      input.addEventListener("input", function () {
        var custom = input.form && input.form.querySelector(
          'input[type="radio"][name="' + input.name.replace(/^custom_/, "") + '"][value="custom"]');
        if (custom && input.value.trim()) custom.checked = true;
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
