// Polls /state once a second; when the issue, theme or vocabulary changes on
// disk the server re-renders, the stamp changes, and the panes reload.
(function () {
  let stamp = null;
  const status = document.getElementById("status");
  const problems = document.getElementById("problems");
  const list = document.getElementById("problem-list");

  async function refresh() {
    try {
      const response = await fetch("/state", { cache: "no-store" });
      const state = await response.json();
      if (state.stamp !== stamp) {
        stamp = state.stamp;
        for (const id of ["phone", "desktop"]) {
          document.getElementById(id).src = "/email.html?v=" + encodeURIComponent(stamp);
        }
        const text = await fetch("/email.txt?v=" + encodeURIComponent(stamp), { cache: "no-store" });
        document.getElementById("text").textContent = await text.text();
        list.replaceChildren(...state.problems.map((p) => {
          const item = document.createElement("li");
          item.textContent = p;
          return item;
        }));
        problems.hidden = state.problems.length === 0;
      }
      status.textContent = state.summary + " · updated " + new Date(state.rendered_at * 1000).toLocaleTimeString();
    } catch (error) {
      status.textContent = "The preview server has stopped (" + error + ").";
    }
  }
  refresh();
  setInterval(refresh, 1000);
})();
