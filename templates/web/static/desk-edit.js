// The edit page's live preview: as the editor types, the form as it now reads (nothing saved) is sent
// to the desk, which renders the email as delivery does; the frame beside the form shows it, or the
// status line says what stops it rendering. Without scripts the panel stays hidden and "Update
// previews" and Save work as before.
(function () {
  "use strict";
  var form = document.querySelector(".edit-form");
  var panel = document.getElementById("live");
  if (!form || !panel || !window.fetch || !window.FormData) { return; }
  var frame = panel.querySelector("iframe");
  var status = panel.querySelector("[data-live-status]");
  var timer = null;
  var busy = false;
  var again = false;
  panel.hidden = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(panel.getAttribute("data-live"), { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : { url: null, problems: ["the preview could not be made (" + response.status + ")"] }; })
      .then(function (answer) {
        if (answer.url) {
          frame.src = answer.url;
          status.textContent = "Up to date with the form (not saved).";
        } else {
          var count = answer.problems.length;
          status.textContent = "Showing the last email that could be made: " + count + " problem" + (count === 1 ? "" : "s") +
            " first (" + answer.problems[0] + ").";
        }
      })
      .catch(function () { status.textContent = "The preview could not be reached."; })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  form.addEventListener("input", function () { window.clearTimeout(timer); timer = window.setTimeout(refresh, 600); });
  form.addEventListener("change", function () { window.clearTimeout(timer); timer = window.setTimeout(refresh, 300); });
  refresh();
})();
