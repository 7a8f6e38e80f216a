// Archive search: fetches the prebuilt index (search.json) once and matches every word of the query,
// the last one as a prefix. First-party, no dependencies, no inline code: works under CSP default-src 'self'.
// Words are folded as the build folds them (archive/search.py): accents removed, lower case, split on
// anything that is not a letter or digit.
(function () {
  "use strict";
  var form = document.querySelector("form.search-form");
  if (!form) return;
  var input = form.querySelector("input[name=q]");
  var status = document.getElementById("search-status");
  var results = document.getElementById("search-results");
  var root = form.getAttribute("data-root");
  var indexUrl = form.getAttribute("data-index");
  var STOP = " a an and are as at be by for from has have in into is it its of on or that the their this to was were which will with ";
  var loading = null;
  var MAX = 100;

  function words(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().split(/[^a-z0-9]+/)
      .filter(function (w) { return w.length > 1 && STOP.indexOf(" " + w + " ") < 0; });
  }

  function load() {
    if (!loading) {
      loading = fetch(indexUrl).then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      }).then(function (data) {
        var terms = data.terms, keys = Object.keys(terms);
        // Postings are stored as gaps between item numbers; add them up once.
        keys.forEach(function (key) {
          var list = terms[key], total = 0;
          for (var i = 0; i < list.length; i++) { total += list[i]; list[i] = total; }
        });
        data.keys = keys;
        return data;
      });
    }
    return loading;
  }

  function matches(data, word, prefix) {
    var found = new Set();
    if (!prefix) {
      (data.terms[word] || []).forEach(function (n) { found.add(n); });
      return found;
    }
    data.keys.forEach(function (key) {
      if (key.lastIndexOf(word, 0) === 0) data.terms[key].forEach(function (n) { found.add(n); });
    });
    return found;
  }

  function search(data, query) {
    var list = words(query);
    if (!list.length) return [];
    var hits = null;
    list.forEach(function (word, i) {
      var found = matches(data, word, i === list.length - 1);
      hits = hits === null ? found : new Set(Array.from(hits).filter(function (n) { return found.has(n); }));
    });
    // Item numbers follow the issues newest first: ascending order is newest first.
    return Array.from(hits).sort(function (a, b) { return a - b; });
  }

  function show(data, query, hits) {
    results.textContent = "";
    var count = hits.length;
    status.textContent = count === 0 ? "Nothing found for \u201c" + query + "\u201d."
      : count + (count === 1 ? " result" : " results") + " for \u201c" + query + "\u201d"
        + (count > MAX ? ", showing the newest " + MAX + "." : ".");
    hits.slice(0, MAX).forEach(function (n) {
      var doc = data.docs[n], issue = data.issues[doc[0]];
      var li = document.createElement("li");
      var article = document.createElement("article");
      var h = document.createElement("h2");
      var a = document.createElement("a");
      a.href = root + encodeURIComponent(issue[0]) + "/" + (doc[1] ? "#" + doc[1] : "");
      a.textContent = doc[2];
      h.appendChild(a);
      var meta = document.createElement("p");
      meta.className = "meta";
      meta.textContent = doc[3] + " \u00b7 " + issue[1] + " \u00b7 " + issue[2];
      article.appendChild(h);
      article.appendChild(meta);
      li.appendChild(article);
      results.appendChild(li);
    });
  }

  function run(query, push) {
    query = query.trim();
    if (push) {
      var url = new URL(window.location.href);
      if (query) url.searchParams.set("q", query); else url.searchParams.delete("q");
      window.history.pushState({ q: query }, "", url);
    }
    if (!query) { results.textContent = ""; status.textContent = ""; return; }
    status.textContent = "Searching\u2026";
    load().then(function (data) { show(data, query, search(data, query)); }, function () {
      status.textContent = "The search index could not be loaded. Browse by topic, place or year below.";
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    run(input.value, true);
  });
  window.addEventListener("popstate", function () {
    input.value = new URLSearchParams(window.location.search).get("q") || "";
    run(input.value, false);
  });
  var initial = new URLSearchParams(window.location.search).get("q");
  if (initial) { input.value = initial; run(initial, false); }
})();
