// Loaded by Solara on every page of the app (the assets folder beside the app's folder).
// Starts loading plotly's widget bundle (5 MB) as soon as the page opens, before any chart's
// widget exists: evaluating the bundle holds the page for a moment (seconds on a busy machine),
// and anywidget drops for good the messages of a widget whose module is not initialized within
// 2 s, so a chart made while the bundle was being evaluated would never update. The bundle's
// name is in public/plotly-widget.json (viz/plotly_bundle.py); each chart's module imports the
// same address (viz/figures.py), so the browser loads and evaluates it once.
(function () {
  var root = (window.solara && window.solara.rootPath) || "";
  fetch(root + "/static/public/plotly-widget.json", { cache: "no-cache" })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (index) {
      if (index && index.bundle) {
        return import(location.origin + root + "/static/public/" + index.bundle);
      }
    })
    .catch(function () {});   // without it, the first chart loads the bundle
})();
