// Polls /state once a second; when the issue, theme or vocabulary changes on
// disk the server re-renders, the stamp changes, and the panes reload.
(function () {
  let stamp = null;
  const status = document.getElementById("status");
  const problems = document.getElementById("problems");
  const list = document.getElementById("problem-list");
  const views = document.getElementById("views");
  const viewList = document.getElementById("view-list");
  const viewCurrent = document.getElementById("view-current");
  const view = new URLSearchParams(location.search).get("view") || "0";

  function showViews(labels) {
    // One entry per distinct email (`preview --as` or `--segment`); the whole issue needs no menu.
    views.hidden = labels.length < 2 && !(labels.length === 1 && labels[0] !== "the whole issue");
    viewCurrent.textContent = labels[Number(view)] || labels[0] || "";
    if (labels.length <= 5) views.open = true;  // a long list stays folded above the email
    viewList.replaceChildren(...labels.map((label, number) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = "/?view=" + number;
      link.textContent = label;
      if (String(number) === view) link.setAttribute("aria-current", "page");
      item.append(link);
      return item;
    }));
  }

  async function refresh() {
    try {
      const response = await fetch("/state", { cache: "no-store" });
      const state = await response.json();
      if (state.stamp !== stamp) {
        stamp = state.stamp;
        for (const id of ["phone", "desktop"]) {
          document.getElementById(id).src = "/email.html?view=" + view + "&v=" + encodeURIComponent(stamp);
        }
        const text = await fetch("/email.txt?view=" + view + "&v=" + encodeURIComponent(stamp), { cache: "no-store" });
        showViews(state.views || []);
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
