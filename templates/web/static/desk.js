// The campaign page's figures, kept up to date without a reload: every 3 seconds the page asks for
// its progress (JSON from the same server) and writes each figure where `data-field` or `data-count`
// marks it, until the campaign is sent or cancelled. Without scripts the page shows the figures as
// they were when it was loaded.
// The schedule form: as segments and lists are ticked, how many members that reaches, each once.
(function () {
  "use strict";
  var reach = document.querySelector("[data-reach]");
  if (!reach) { return; }
  var form = reach.closest("form");
  var number = new Intl.NumberFormat("en-GB");
  function update() {
    var ticked = Array.prototype.map.call(form.querySelectorAll("input[name=to]:checked"), function (box) {
      return "to=" + encodeURIComponent(box.value);
    });
    if (!ticked.length) { reach.textContent = "Tick at least one segment or list."; return; }
    fetch(reach.getAttribute("data-reach") + "?" + ticked.join("&"), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (counted) {
        if (counted.error) { reach.textContent = counted.error; return; }
        reach.textContent = number.format(counted.new) + " members in all, each sent it once" +
          (counted.already ? " (" + number.format(counted.already) + " more already had this issue and are left out)." : ".");
      });
  }
  form.addEventListener("change", function (event) { if (event.target.name === "to") { update(); } });
})();

(function () {
  "use strict";
  var box = document.querySelector("[data-progress]");
  if (!box) { return; }
  var url = box.getAttribute("data-progress");
  var number = new Intl.NumberFormat("en-GB");
  function show(progress) {
    box.querySelectorAll("[data-field]").forEach(function (element) {
      var value = progress[element.getAttribute("data-field")];
      element.textContent = typeof value === "number" ? number.format(value) : value;
    });
    box.querySelectorAll("[data-count]").forEach(function (element) {
      element.textContent = number.format(progress.counts[element.getAttribute("data-count")] || 0);
    });
    var bar = box.querySelector("progress");
    if (bar) { bar.max = progress.total || 1; bar.value = progress.done; }
    return progress.finished;
  }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (progress) {
        if (progress && show(progress)) { return; }
        window.setTimeout(tick, 3000);
      })
      .catch(function () { window.setTimeout(tick, 10000); });
  }
  window.setTimeout(tick, 3000);
})();
